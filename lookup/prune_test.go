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
// with the same cut-offs: the pruned Index, a fresh Index loaded from the
// pruned database and the Index before pruning give the same bytes for every
// client whose last sync is after the cut-off, and memory actually shrinks.
// Live history is held to retention.history; imported history to
// retention.imported, and kept for good when that is zero.
func TestPruneMatchesDatabaseRetention(t *testing.T) {
	for _, tc := range []struct {
		name      string
		imported  bool
		retention persistence.RetentionConfig
		pruned    bool
	}{
		{"live", false, persistence.RetentionConfig{History: 35 * day, Receipts: 14 * day}, true},
		{"live-imported-window-ignored", false, persistence.RetentionConfig{History: 35 * day, Receipts: 14 * day, Imported: 5 * day}, true},
		{"imported-kept", true, persistence.RetentionConfig{History: 10 * day, Receipts: 14 * day}, false},
		{"imported-own-window", true, persistence.RetentionConfig{History: 10 * day, Receipts: 14 * day, Imported: 35 * day}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testPrune(t, tc.imported, tc.retention, tc.pruned)
		})
	}
}

func testPrune(t *testing.T, imported bool, retention persistence.RetentionConfig, pruned bool) {
	f := newFixtureWith(t, imported)
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

	res, err := f.store.Prune(ctx, ref, retention)
	if err != nil {
		t.Fatal(err)
	}
	var importedCut time.Time
	if retention.Imported > 0 {
		importedCut = ref.Add(-retention.Imported)
	}
	dropped, _ := f.index.Prune(ref.Add(-retention.History), importedCut)
	if !pruned {
		if res.Updates+res.Channels+res.NodeAnnouncements != 0 || dropped != 0 || f.index.Stats().Rows != rowsBefore {
			t.Fatalf("imported history pruned although kept for good (database %+v, index %d)", res, dropped)
		}
		return
	}
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
