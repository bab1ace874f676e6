package persistence_test

import (
	"context"
	"testing"
	"time"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// BenchmarkWriterChannelUpdates measures the batched writer's sustained rate
// for channel updates (the bulk of gossip) with mainnet-sized signed blobs,
// each paired with a per-peer receipt as the downloader writes them.
func BenchmarkWriterChannelUpdates(b *testing.B) {
	for _, bc := range []struct {
		name     string
		receipts bool
	}{{"updates", false}, {"updates+receipts", true}} {
		b.Run(bc.name, func(b *testing.B) {
			store := persistencetest.NewStore(b)
			w := persistence.NewWriter(store, persistence.WriterConfig{}, persistencetest.Logger(b))
			ctx := context.Background()
			w.Start(ctx)
			blob := make([]byte, 136)
			now := time.Now()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				u := syntheticUpdate(i, now)
				u.Timestamp = uint32(1_700_000_000 + i)
				u.Signed = blob
				if err := w.Submit(ctx, u); err != nil {
					b.Fatal(err)
				}
				if bc.receipts {
					if err := w.Submit(ctx, &persistence.Receipt{ReceivedAt: now, PeerID: int32(i % 8), MsgHash: int64(i), MsgType: 258, Size: 138}); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := w.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "updates/s")
			b.StopTimer()
			w.Stop()
		})
	}
}
