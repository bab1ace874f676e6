package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/gsp"
	"github.com/lnsync/lnsync/persistence"
)

// LoadStats says what LoadTrusted stored.
type LoadStats struct {
	Messages int64   `json:"messages"`
	Inserted int64   `json:"inserted_rows"`
	Checked  int64   `json:"signatures_checked"` // signatures of the sample, all valid
	Seconds  float64 `json:"seconds"`
}

// LoadTrusted stores every message of the GSP files, in order, through w
// with its receive time, without the validator: the files are package gen's
// output, signed by the generator. The signatures of one message in every
// checkEvery are verified all the same, after each file, so that a damaged
// or foreign file fails the load (whose database is then of no use; the
// benchmark recreates it on every run). It returns after w has committed
// everything, with the node ids of every announced channel.
func LoadTrusted(ctx context.Context, w *persistence.Writer, files []string, checkEvery int) (LoadStats, ChannelNodes, error) {
	var st LoadStats
	nodes := ChannelNodes{}
	before := w.Stats().Inserted
	start := time.Now()
	var checks []SignatureCheck
	for _, path := range files {
		err := gsp.ReadFile(path, func(rec gsp.Record) error {
			st.Messages++
			sample := checkEvery > 0 && st.Messages%int64(checkEvery) == 0
			var err error
			if checks, err = sampleChecks(rec, sample, nodes, checks); err != nil {
				return fmt.Errorf("%s: message %d: %w", path, st.Messages, err)
			}
			out, err := download.Record(rec.Msg, rec.ReceivedAt)
			if err != nil {
				return fmt.Errorf("%s: message %d: %w", path, st.Messages, err)
			}
			return w.Submit(ctx, out)
		})
		if err != nil {
			return st, nil, err
		}
		for _, c := range checks {
			if !c.verify() {
				return st, nil, fmt.Errorf("%s: a sampled signature does not verify: not a generated history", path)
			}
		}
		st.Checked += int64(len(checks))
		checks = checks[:0]
	}
	if err := w.Flush(ctx); err != nil {
		return st, nil, err
	}
	st.Inserted = w.Stats().Inserted - before
	st.Seconds = time.Since(start).Seconds()
	return st, nodes, nil
}
