package harness

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/persistence"
)

// IngestResult is what Ingest measured.
type IngestResult struct {
	// Messages is how many gossip messages got a verdict; Accepted how many
	// were valid and stored.
	Messages int64            `json:"messages"`
	Accepted int64            `json:"accepted"`
	Verdicts map[string]int64 `json:"verdicts"`
	// Signatures is how many signature checks the accepted messages took
	// (four per channel announcement, one otherwise).
	Signatures int64 `json:"signatures"`
	// Seconds runs from the first verdict to the commit of the last row.
	Seconds             float64 `json:"seconds"`
	PerSecond           float64 `json:"messages_per_second"`
	SignaturesPerSecond float64 `json:"signatures_per_second"`
}

// Ingest runs lnsync's downloader against one peer (a load peer on loopback)
// until expect messages have a verdict and every accepted one is committed,
// and measures the rate. The downloader's clock is clock, so that a recorded
// history passes the time rules; the writer keeps that clock's receive
// times. The store should be a fresh database.
func Ingest(ctx context.Context, store *persistence.Store, peer config.Peer, chain [32]byte, clock func() time.Time,
	expect int64, logger *slog.Logger) (IngestResult, error) {
	var res IngestResult
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true}, logger)
	w.Start(ctx)
	defer w.Stop()
	d := download.New(download.Config{
		Peers: []config.Peer{peer}, ChainHash: chain, FullSyncPeers: 1, Now: clock,
	}, store, w, logger)
	if err := d.Start(ctx); err != nil {
		return res, err
	}
	defer d.Stop()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var first time.Time
	last, progressed := int64(0), time.Now()
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		n := d.Verdicts().Total()
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n >= expect {
			break
		}
		if n != last {
			last, progressed = n, time.Now()
		} else if time.Since(progressed) > time.Minute {
			return res, fmt.Errorf("ingest stalled at %d of %d messages (verdicts %v)", n, expect, d.Verdicts().Map())
		}
	}
	if err := w.Flush(ctx); err != nil {
		return res, err
	}
	res.Seconds = time.Since(first).Seconds()
	v := d.Verdicts()
	res.Messages = v.Total()
	res.Accepted = v.Reason(download.ReasonOK)
	res.Verdicts = v.Map()
	res.Signatures = 4*v.Get(download.KindChannelAnnouncement, download.ReasonOK) +
		v.Get(download.KindChannelUpdate, download.ReasonOK) + v.Get(download.KindNodeAnnouncement, download.ReasonOK)
	res.PerSecond = float64(res.Accepted) / res.Seconds
	res.SignaturesPerSecond = float64(res.Signatures) / res.Seconds
	return res, nil
}
