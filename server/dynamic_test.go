package server

import (
	"context"
	"testing"
	"time"

	"github.com/lnsync/lnsync/snapshot/snapshottest"
)

func TestDynamicCacheBounds(t *testing.T) {
	t.Parallel()
	ref := time.Date(2026, 1, 10, 3, 0, 0, 0, time.UTC)
	idx := snapshottest.NewIndex(t, snapshottest.ScopedHistory(ref))
	// key i is the delta from 3(i+1) hours before ref: the entries differ in
	// size, growing with i.
	key := func(i int) dynamicKey {
		return dynamicKey{ref: ref.Unix(), last: ref.Add(-time.Duration(i+1) * 3 * time.Hour).Unix(), version: 1}
	}
	tests := []struct {
		name     string
		max      int
		maxBytes int
		keys     int
		wantKept int // -1: the newest entries that fit in maxBytes together
	}{
		{"within bounds", 10, 1 << 20, 4, 4},
		{"entry count", 3, 1 << 20, 6, 3},
		{"bytes", 100, 5000, 8, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newDynamicCache(2, tt.max, tt.maxBytes)
			defer c.close()
			sizes := make([]int, tt.keys)
			for i := range tt.keys {
				if _, err := c.get(context.Background(), key(i), idx, admitAll); err != nil {
					t.Fatal(err)
				}
				c.mu.Lock()
				sizes[i] = c.entries[key(i)].size
				c.mu.Unlock()
			}
			last := key(tt.keys - 1)
			c.mu.Lock()
			defer c.mu.Unlock()
			if tt.wantKept < 0 {
				tt.wantKept = 0
				for held := 0; tt.wantKept < tt.keys && held+sizes[tt.keys-1-tt.wantKept] <= tt.maxBytes; tt.wantKept++ {
					held += sizes[tt.keys-1-tt.wantKept]
				}
				if c.bytes > tt.maxBytes || tt.wantKept < 2 || tt.wantKept >= tt.keys {
					t.Fatalf("fixture: %d bytes held, %d of %d entries of %v bytes fit", c.bytes, tt.wantKept, tt.keys, sizes)
				}
			}
			if len(c.entries) != tt.wantKept || len(c.order) != tt.wantKept {
				t.Errorf("%d entries (%d in order), want %d", len(c.entries), len(c.order), tt.wantKept)
			}
			if _, ok := c.entries[last]; !ok {
				t.Error("newest entry evicted")
			}
			total := 0
			for _, e := range c.entries {
				total += e.size
			}
			if total != c.bytes {
				t.Errorf("byte count %d, entries hold %d", c.bytes, total)
			}
		})
	}
	// A new reference time drops the old entries.
	c := newDynamicCache(1, 10, 1<<20)
	defer c.close()
	for _, r := range []time.Time{ref.Add(-3 * time.Hour), ref} {
		if _, err := c.get(context.Background(), dynamicKey{ref: r.Unix(), last: ref.Add(-6 * time.Hour).Unix(), version: 2}, idx, admitAll); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.entries) != 1 {
		t.Errorf("%d entries after a new reference time, want 1", len(c.entries))
	}
}

// admitAll admits every computation.
func admitAll() (func(), error) { return func() {}, nil }
