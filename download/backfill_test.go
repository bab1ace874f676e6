package download_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"
	"github.com/jackc/pgx/v5"

	"github.com/lnsync/lnsync/download"
)

// Channels stored without a chain source get their funding amounts later:
// what the chain confirms is stored and reported, what it contradicts stays
// unknown, and an unreachable source leaves the rest for the next round.
func TestFundingBackfill(t *testing.T) {
	t.Parallel()
	s := signer{t: t, chain: regtest}
	const height = 710
	scid := func(h, tx, out uint64) uint64 { return h<<40 | tx<<16 | out }
	a := s.newChannel(scid(height, 1, 0))
	b := s.newChannel(scid(height, 1, 1))
	wrongKeys := s.newChannel(scid(height, 1, 2))
	later := s.newChannel(scid(height+5, 1, 0)) // a block the source does not have: stays unknown, checked again every round
	srv := restFixture(t, map[uint32]*wire.MsgBlock{
		height: blockWith(wire.NewTxOut(400_000, fundingScript(t, a)), wire.NewTxOut(900_000, fundingScript(t, b)),
			wire.NewTxOut(1_000, fundingScript(t, s.newChannel(1)))),
	})

	env := newWriterEnv(t)
	url, store, w, logger := env.url, env.store, env.w, env.logger
	ctx := t.Context()
	// Stored without a chain source, as an import does: no amount.
	v := download.NewValidator(download.ValidatorConfig{ChainHash: regtest}, w, logger)
	vctx, cancel := context.WithCancel(ctx)
	v.Start(vctx)
	src := &download.Source{}
	for _, c := range []*channel{a, b, wrongKeys, later} {
		if err := v.Submit(ctx, download.Message{Wire: s.announcement(c, false), At: time.Now(), From: src}); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	v.Stop()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	reported := map[uint64]uint64{}
	found := func(scid, sats uint64) { mu.Lock(); reported[scid] = sats; mu.Unlock() }

	// An unreachable source: nothing changes, and the round says why.
	down := httptest.NewServer(nil)
	downURL := down.URL
	down.Close()
	bf := download.NewFundingBackfill(download.FundingBackfillConfig{REST: downURL + "/rest", Batch: 2}, store, found, logger)
	if n, err := bf.Round(ctx); n != 0 || err == nil {
		t.Errorf("round against a closed port: %d filled, err %v", n, err)
	}

	bf = download.NewFundingBackfill(download.FundingBackfillConfig{REST: srv.URL + "/rest", Batch: 2}, store, found, logger)
	// Batches of 2: a and b, then wrongKeys and later, then the end.
	for round := range 3 {
		if _, err := bf.Round(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	want := map[uint64]int64{a.scid: 400_000, b.scid: 900_000, wrongKeys.scid: -1, later.scid: -1}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for id, sats := range want {
		var got *int64
		if err := conn.QueryRow(ctx, `SELECT funding_sats FROM channel_announcements WHERE scid = $1`, int64(id)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if (got == nil) != (sats < 0) || got != nil && *got != sats {
			t.Errorf("channel %d: funding %v, want %d (-1: unknown)", id, got, sats)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 2 || reported[a.scid] != 400_000 || reported[b.scid] != 900_000 || bf.Filled() != 2 {
		t.Errorf("reported %v, filled %d; want a and b", reported, bf.Filled())
	}
	// Nothing left that the source can answer: further rounds store nothing.
	if n, _ := bf.Round(ctx); n != 0 {
		t.Errorf("a later round filled %d more", n)
	}
}
