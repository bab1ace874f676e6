package lookup_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/rgs"
)

// TestPruneMatchesDatabaseRetention prunes the database and a loaded Index
// with the same cut-off: the pruned Index, a fresh Index loaded from the
// pruned database and the Index before pruning give the same bytes for every
// client whose last sync is after the cut-off, and memory actually shrinks.
func TestPruneMatchesDatabaseRetention(t *testing.T) {
	f := newFixture(t)
	start := epoch.Add(-60 * day)
	evolve(f, start, 60)
	ctx := context.Background()
	if err := f.w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ref := epoch
	if err := f.index.CatchUp(ctx, ref); err != nil {
		t.Fatal(err)
	}
	lasts := []time.Time{{}, ref.Add(-3 * hour), ref.Add(-day), ref.Add(-7 * day), ref.Add(-32 * day)}
	encodeAll := func(idx *lookup.Index) [][]byte {
		t.Helper()
		var out [][]byte
		for _, last := range lasts {
			for _, v := range []int{rgs.Version1, rgs.Version2} {
				d, _, err := idx.Delta(last, ref)
				if err != nil {
					t.Fatal(err)
				}
				b, err := d.Encode(v)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
		}
		return out
	}
	before := encodeAll(f.index)
	rowsBefore := f.index.Stats().Rows

	retention := persistence.RetentionConfig{History: 35 * day, Receipts: 14 * day}
	res, err := f.store.Prune(ctx, ref, retention)
	if err != nil {
		t.Fatal(err)
	}
	dropped, _ := f.index.Prune(ref.Add(-retention.History))
	if res.Updates == 0 || dropped == 0 {
		t.Fatalf("nothing pruned (database %+v, index %d)", res, dropped)
	}
	fresh := lookup.NewIndex(f.store, rgs.ChainMainnet, persistencetest.Logger(t))
	if err := fresh.CatchUp(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if got, want := f.index.Stats().Rows, fresh.Stats().Rows; got != want {
		t.Errorf("pruned index holds %d rows, a fresh load %d", got, want)
	}
	if f.index.Stats().Rows >= rowsBefore {
		t.Errorf("index did not shrink: %d rows before, %d after", rowsBefore, f.index.Stats().Rows)
	}
	after, reloaded := encodeAll(f.index), encodeAll(fresh)
	for i := range before {
		if !bytes.Equal(after[i], reloaded[i]) {
			t.Errorf("delta %d: pruned index and fresh load differ", i)
		}
		if !bytes.Equal(before[i], after[i]) {
			t.Errorf("delta %d (last %v): pruning changed a delta whose last sync is after the cut-off", i, lasts[i/2])
		}
	}
}
