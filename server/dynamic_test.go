package server

import (
	"context"
	"testing"
	"time"

	"github.com/lnsync/lnsync/lookup"
)

// sizedEncoder returns deltas of a fixed size.
type sizedEncoder struct{ size int }

func (e sizedEncoder) Encode(ctx context.Context, last, ref time.Time, v int) ([]byte, lookup.DeltaStats, error) {
	b := make([]byte, e.size)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b, lookup.DeltaStats{}, nil
}

func TestDynamicCacheBounds(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		maxBytes int
		keys     int
		wantKept int // -1: as many as fit in maxBytes
	}{
		{"within bounds", 10, 1 << 20, 4, 4},
		{"entry count", 3, 1 << 20, 6, 3},
		{"bytes", 100, 5000, 8, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newDynamicCache(2, tt.max, tt.maxBytes)
			defer c.close()
			var last dynamicKey
			for i := range tt.keys {
				last = dynamicKey{ref: 1000000, last: int64(i) * 10800, version: 1}
				if _, err := c.get(context.Background(), last, sizedEncoder{1000}); err != nil {
					t.Fatal(err)
				}
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if tt.wantKept < 0 {
				tt.wantKept = tt.maxBytes / c.entries[last].size
				if c.bytes > tt.maxBytes || tt.wantKept >= tt.keys {
					t.Fatalf("fixture: %d bytes held, %d fit", c.bytes, tt.wantKept)
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
	for _, ref := range []int64{1000000, 1010800} {
		if _, err := c.get(context.Background(), dynamicKey{ref: ref, last: 10800, version: 2}, sizedEncoder{10}); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.entries) != 1 {
		t.Errorf("%d entries after a new reference time, want 1", len(c.entries))
	}
}
