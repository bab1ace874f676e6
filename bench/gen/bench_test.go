package gen

import (
	"bytes"
	"testing"
)

// BenchmarkMessage measures building and signing one message of each kind.
func BenchmarkMessage(b *testing.B) {
	small := smallFixture(b)
	n := small.net
	h := newHistory(n)
	events := map[string]event{
		"channel_announcement": {kind: kindChannelAnn, idx: 0},
		"channel_update":       {kind: kindChannelUpd, idx: 0, ts: 1726963200, pol: h.dirs[0].pol},
		"node_announcement":    {kind: kindNodeAnn, idx: 0, ts: 1726963200},
	}
	for name, e := range events {
		b.Run(name, func(b *testing.B) {
			var buf bytes.Buffer
			for b.Loop() {
				if _, err := n.message(&e, &buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
