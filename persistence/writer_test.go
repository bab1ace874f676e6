package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// syntheticUpdate returns the i-th distinct channel update: 1000 channels,
// both directions, increasing timestamps.
func syntheticUpdate(i int, received time.Time) *persistence.ChannelUpdate {
	return &persistence.ChannelUpdate{
		SCID:                      uint64(800000+i%1000) << 40,
		Direction:                 uint8(i / 1000 % 2),
		Timestamp:                 uint32(1_700_000_000 + i/2000),
		MessageFlags:              1,
		ChannelFlags:              uint8(i / 1000 % 2),
		CLTVExpiryDelta:           uint16(40 + i%100),
		HTLCMinimumMsat:           1000,
		FeeBaseMsat:               uint32(i % 5000),
		FeeProportionalMillionths: uint32(i % 3000),
		HTLCMaximumMsat:           990_000_000,
		Signed:                    []byte(fmt.Sprintf("update-%d", i)),
		ReceivedAt:                received,
	}
}

func openPool(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestWriterStoresEveryKindOnce(t *testing.T) {
	t.Parallel()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	w := persistence.NewWriter(store, persistence.WriterConfig{BatchSize: 7, FlushInterval: 10 * time.Millisecond}, persistencetest.Logger(t))
	ctx := context.Background()
	w.Start(ctx)
	defer w.Stop()

	now := time.Now()
	ann := &persistence.ChannelAnnouncement{SCID: 42 << 40, Features: []byte{}, Signed: []byte("ann"), ReceivedAt: now}
	ann.NodeID1[0], ann.NodeID2[0] = 2, 3
	annWithFunding := *ann
	annWithFunding.FundingSats, annWithFunding.FundingKnown = 1_000_000, true
	node := &persistence.NodeAnnouncement{Timestamp: 5, Features: []byte{0x02}, Addresses: []byte{1, 127, 0, 0, 1, 0x26, 0x07}, Signed: []byte("node"), ReceivedAt: now}
	node.NodeID[0] = 2
	// The announcement is stored first without a funding amount; a later copy fills it in.
	if err := w.Submit(ctx, ann); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs := []persistence.Record{ann, ann, &annWithFunding, node, node}
	for i := range 50 {
		u := syntheticUpdate(i, now)
		recs = append(recs, u, u) // every update twice: stored once
	}
	recs = append(recs,
		&persistence.Receipt{ReceivedAt: now, PeerID: 1, MsgHash: persistence.MessageHash([]byte("ann")), MsgType: 256, Size: 3},
		&persistence.Receipt{ReceivedAt: now.Add(-48 * time.Hour), PeerID: 2, MsgHash: 7, MsgType: 258, Size: 140})
	for _, r := range recs {
		if err := w.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	conn := openPool(t, url)
	if n := count(t, conn, "SELECT count(*) FROM channel_updates"); n != 50 {
		t.Errorf("channel_updates = %d, want 50", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM channel_announcements WHERE funding_sats = 1000000"); n != 1 {
		t.Errorf("announcement with funding filled in = %d, want 1", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM node_announcements"); n != 1 {
		t.Errorf("node_announcements = %d, want 1", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM receipts"); n != 2 {
		t.Errorf("receipts = %d, want 2", n)
	}
	if n := count(t, conn, "SELECT count(DISTINCT tableoid) FROM receipts"); n != 2 {
		t.Errorf("receipts spread over %d partitions, want 2 (one per day)", n)
	}
	st := w.Stats()
	if st.Submitted != int64(len(recs)+1) || st.Committed != int64(len(recs)+1) {
		t.Errorf("stats %+v, want %d submitted and committed", st, len(recs)+1)
	}
	if st.Inserted != 50+1+1+2+1 { // updates, announcement, node, receipts, funding fill-in
		t.Errorf("inserted = %d, want 55", st.Inserted)
	}
}

func TestWriterSeenNeverGoesBackwards(t *testing.T) {
	t.Parallel()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	w := persistence.NewWriter(store, persistence.WriterConfig{BatchSize: 100, FlushInterval: time.Millisecond}, persistencetest.Logger(t))
	ctx := context.Background()
	w.Start(ctx)
	defer w.Stop()
	// Receive times run backwards; live seen values must still follow commit order.
	base := time.Now()
	for i := range 1000 {
		if err := w.Submit(ctx, syntheticUpdate(i, base.Add(-time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	conn := openPool(t, url)
	if n := count(t, conn, `SELECT count(*) FROM (SELECT seen < lag(seen) OVER (ORDER BY id) AS back FROM channel_updates) s WHERE back`); n != 0 {
		t.Errorf("%d rows have a seen earlier than a row committed before them", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM channel_updates WHERE seen < $1`, base.Add(-time.Second)); n != 0 {
		t.Errorf("%d live rows took their receive time as seen", n)
	}
}

func TestWriterKeepsReceiveTimesForImports(t *testing.T) {
	t.Parallel()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true}, persistencetest.Logger(t))
	ctx := context.Background()
	w.Start(ctx)
	past := time.Date(2025, 8, 18, 12, 0, 0, 123456000, time.UTC)
	for i := range 10 {
		if err := w.Submit(ctx, syntheticUpdate(i, past.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	w.Stop()
	conn := openPool(t, url)
	var first, last time.Time
	if err := conn.QueryRow(ctx, "SELECT min(seen), max(seen) FROM channel_updates").Scan(&first, &last); err != nil {
		t.Fatal(err)
	}
	if !first.Equal(past) || !last.Equal(past.Add(9*time.Minute)) {
		t.Errorf("seen range %v..%v, want %v..%v", first, last, past, past.Add(9*time.Minute))
	}
}

func TestWriterStopFlushesQueue(t *testing.T) {
	t.Parallel()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	// A long flush interval: only Stop makes the partial batch commit.
	w := persistence.NewWriter(store, persistence.WriterConfig{BatchSize: 100000, FlushInterval: time.Hour}, persistencetest.Logger(t))
	ctx := context.Background()
	w.Start(ctx)
	const n = 5000
	for i := range n {
		if err := w.Submit(ctx, syntheticUpdate(i, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	w.Stop()
	if err := w.Submit(ctx, syntheticUpdate(0, time.Now())); !errors.Is(err, persistence.ErrClosed) {
		t.Errorf("Submit after Stop = %v, want ErrClosed", err)
	}
	conn := openPool(t, url)
	if got := count(t, conn, "SELECT count(*) FROM channel_updates"); got != n {
		t.Errorf("after Stop %d rows, want %d", got, n)
	}
}

// TestWriterSurvivesPostgresRestart writes 100k channel updates from several
// producers through one Writer while the test restarts (and then crashes and
// recovers) Postgres mid-stream, and then finds every row exactly once.
func TestWriterSurvivesPostgresRestart(t *testing.T) {
	t.Parallel()
	cluster := persistencetest.StartCluster(t)
	url := cluster.NewDatabase()
	store := persistencetest.OpenMigrated(t, url)
	w := persistence.NewWriter(store, persistence.WriterConfig{
		QueueSize: 2000, BatchSize: 1000, FlushInterval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}, persistencetest.Logger(t))
	ctx := context.Background()
	w.Start(ctx)

	const total, producers = 100_000, 4
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < total; i += producers {
				if err := w.Submit(ctx, syntheticUpdate(i, time.Now())); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	waitCommitted := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for w.Stats().Committed < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d committed, waiting for %d", w.Stats().Committed, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCommitted(total / 4)
	cluster.Stop()
	// While the database is down the queue fills and producers block.
	deadline := time.Now().Add(30 * time.Second)
	for w.Stats().Queued < 1000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if q := w.Stats().Queued; q < 1000 {
		t.Errorf("queue holds %d records 30s after Postgres stopped; back-pressure expected it full", q)
	}
	cluster.Start()
	waitCommitted(total / 2)
	cluster.Crash()
	time.Sleep(500 * time.Millisecond)
	cluster.Start()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submit: %v", err)
	}
	w.Stop()

	st := w.Stats()
	if st.Retries == 0 {
		t.Errorf("no batch was retried: the restarts did not hit the writer")
	}
	if st.Dropped != 0 {
		t.Errorf("dropped %d records", st.Dropped)
	}
	conn := openPool(t, url)
	if n := count(t, conn, "SELECT count(*) FROM channel_updates"); n != total {
		t.Errorf("rows = %d, want %d", n, total)
	}
	if n := count(t, conn, "SELECT count(DISTINCT signed) FROM channel_updates"); n != total {
		t.Errorf("distinct messages = %d, want %d (each exactly once)", n, total)
	}
	t.Logf("writer stats: %+v", st)
}

func TestSubmitBlocksWhileDatabaseIsDown(t *testing.T) {
	t.Parallel()
	cluster := persistencetest.StartCluster(t)
	url := cluster.NewDatabase()
	store := persistencetest.OpenMigrated(t, url)
	w := persistence.NewWriter(store, persistence.WriterConfig{QueueSize: 10, BatchSize: 5, FlushInterval: time.Millisecond, MaxBackoff: 100 * time.Millisecond}, persistencetest.Logger(t))
	ctx := context.Background()
	w.Start(ctx)
	defer w.Stop()
	cluster.Stop()
	var blocked error
	for i := range 100 {
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := w.Submit(sctx, syntheticUpdate(i, time.Now()))
		cancel()
		if err != nil {
			blocked = err
			break
		}
	}
	if !errors.Is(blocked, context.DeadlineExceeded) {
		t.Fatalf("Submit never blocked with Postgres down (err %v)", blocked)
	}
	accepted := w.Stats().Submitted
	if accepted > 10+5 {
		t.Errorf("accepted %d records with a queue of 10 and batches of 5", accepted)
	}
	cluster.Start()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	conn := openPool(t, url)
	if n := count(t, conn, "SELECT count(*) FROM channel_updates"); n != accepted {
		t.Errorf("rows = %d, want the %d accepted", n, accepted)
	}
}
