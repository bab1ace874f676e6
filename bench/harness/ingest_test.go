package harness

import (
	"context"
	"testing"
	"time"

	"github.com/lnsync/lnsync/bench/loadpeer"
	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// TestIngestThroughLoadPeer streams the initial graph and the first day from
// a real BOLT 8 load peer into the downloader, on the history's clock: every
// message must be accepted and stored with a receipt.
func TestIngestThroughLoadPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := loadpeer.Listen(loadpeer.Config{Listen: "127.0.0.1:0", Files: history.files[:2], WaitForFilter: true,
		Logger: persistencetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	peerCtx, stopPeer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- p.Serve(peerCtx) }()
	t.Cleanup(func() {
		stopPeer()
		<-served
	})

	store := persistencetest.NewStore(t)
	t0, clock0 := time.Now(), time.Unix(history.man.Start, 0).Add(12*time.Hour)
	clock := func() time.Time { return clock0.Add(time.Since(t0)) }
	want := messages(2)
	res, err := Ingest(ctx, store, config.Peer{PubKey: p.PubKey(), Addr: p.Addr()}, *mainnet(), clock, want,
		persistencetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != want || res.Messages != want {
		t.Fatalf("accepted %d of %d messages, want all %d: %v", res.Accepted, res.Messages, want, res.Verdicts)
	}
	m := history.man.Files
	if sigs := int64(4*(m[0].ChannelAnnouncements+m[1].ChannelAnnouncements) + m[0].ChannelUpdates + m[1].ChannelUpdates +
		m[0].NodeAnnouncements + m[1].NodeAnnouncements); res.Signatures != sigs {
		t.Errorf("%d signatures counted, want %d", res.Signatures, sigs)
	}
	if res.Seconds <= 0 || res.PerSecond <= 0 {
		t.Errorf("rate not measured: %+v", res)
	}
	c, err := store.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ChannelAnnouncements + c.ChannelUpdates + c.NodeAnnouncements; got != want {
		t.Errorf("database holds %d gossip rows, want %d", got, want)
	}
	var receipts int64
	var first, last time.Time
	if err := store.Pool().QueryRow(ctx, "SELECT count(*), min(received_at), max(received_at) FROM receipts").
		Scan(&receipts, &first, &last); err != nil {
		t.Fatal(err)
	}
	if receipts != want {
		t.Errorf("%d receipts, want one per message (%d)", receipts, want)
	}
	// Receipts carry the downloader's clock, not the wall clock.
	if first.Before(clock0) || last.After(clock0.Add(time.Since(t0))) {
		t.Errorf("receipts span %s … %s, outside the history's clock from %s", first, last, clock0)
	}
}
