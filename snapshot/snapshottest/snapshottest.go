// Package snapshottest gives snapshot and server tests a real delta source: a
// deterministic gossip history stored in a real test database through the
// persistence Writer, read back by a lookup.Index. Nothing here stands in for
// the database or the index.
package snapshottest

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/rgs"
)

// Keys returns n valid node keys in ascending byte order.
func Keys(n int) []rgs.NodeID {
	out := make([]rgs.NodeID, n)
	for i := range out {
		var secret [32]byte
		secret[0] = 1
		secret[30], secret[31] = byte(i>>8), byte(i)
		_, pub := btcec.PrivKeyFromBytes(secret[:])
		copy(out[i][:], pub.SerializeCompressed())
	}
	slices.SortFunc(out, func(a, b rgs.NodeID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// ScopedHistory returns a small history (40 channels over the 40 days before
// ref) with changes in every scope window before ref — the last 3 hours, 3 to
// 6 hours back, …, 16 to 32 days back — and channels known 32 days back, so
// that a generation at ref has a different file for every scope and for the
// full snapshot.
func ScopedHistory(ref time.Time) *History {
	return GenerateHistory(HistoryConfig{
		Channels: 40, Nodes: 30, From: ref.Add(-40 * 24 * time.Hour), To: ref,
		NewShare: 0.2, UpdateEvery: 24 * time.Hour, KeepAlive: 3 * time.Hour, Seed: 1,
	})
}

// Fill stores h in store through a Writer that keeps the receive times, and
// returns once every record is committed.
func Fill(t testing.TB, store *persistence.Store, h *History) {
	t.Helper()
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, FlushInterval: 10 * time.Millisecond}, Logger(t))
	w.Start(context.Background())
	defer w.Stop()
	if err := h.Submit(context.Background(), w); err != nil {
		t.Fatal(err)
	}
}

// NewIndex returns a mainnet lookup.Index over a fresh, migrated database in
// the test cluster holding h.
func NewIndex(t testing.TB, h *History) *lookup.Index {
	t.Helper()
	store := persistencetest.NewStore(t)
	Fill(t, store, h)
	return lookup.NewIndex(store, rgs.ChainMainnet, Logger(t))
}

// Logger returns a logger writing to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
