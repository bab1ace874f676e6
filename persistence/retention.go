package persistence

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// RetentionConfig says how much history Prune keeps.
type RetentionConfig struct {
	// History is the window of channel updates and node announcements kept in
	// full. Older versions are deleted except the newest one of every channel
	// direction and node, which deltas need as their reference. Channels whose
	// newest update is older than History are deleted altogether (their
	// announcement too): clients dropped them long ago.
	History time.Duration
	// Receipts is the window of per-peer receipts kept; older daily partitions
	// are dropped whole.
	Receipts time.Duration
}

// PruneResult counts what Prune removed.
type PruneResult struct {
	Updates           int64
	Channels          int64
	NodeAnnouncements int64
	ReceiptPartitions int
}

// Prune deletes history older than cfg allows as of now and creates the
// receipt partitions for the next two days ahead of the writer.
func (s *Store) Prune(ctx context.Context, now time.Time, cfg RetentionConfig) (PruneResult, error) {
	var res PruneResult
	cutoff := now.Add(-cfg.History)
	// Channels that went silent before the cut-off: everything goes. Each
	// channel direction's newest version is what the unique index gives first.
	tag, err := s.pool.Exec(ctx, `
		WITH dead AS (
			SELECT a.scid FROM channel_announcements a
			WHERE a.seen < $1
			  AND NOT EXISTS (SELECT 1 FROM channel_updates u WHERE u.scid = a.scid AND u.seen >= $1)
			  AND coalesce((SELECT max(u.timestamp) FROM channel_updates u WHERE u.scid = a.scid), 0) < $2
		), gone AS (
			DELETE FROM channel_updates u USING dead WHERE u.scid = dead.scid
		)
		DELETE FROM channel_announcements a USING dead WHERE a.scid = dead.scid`, cutoff, cutoff.Unix())
	if err != nil {
		return res, fmt.Errorf("prune dead channels: %w", translate(err))
	}
	res.Channels = tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `
		DELETE FROM channel_updates u
		WHERE u.seen < $1
		  AND EXISTS (SELECT 1 FROM channel_updates n
		              WHERE n.scid = u.scid AND n.direction = u.direction
		                AND n.seen < $1 AND n.timestamp > u.timestamp)`, cutoff)
	if err != nil {
		return res, fmt.Errorf("prune channel updates: %w", translate(err))
	}
	res.Updates = tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `
		DELETE FROM node_announcements a
		WHERE a.seen < $1
		  AND EXISTS (SELECT 1 FROM node_announcements n
		              WHERE n.node_id = a.node_id AND n.seen < $1 AND n.timestamp > a.timestamp)`, cutoff)
	if err != nil {
		return res, fmt.Errorf("prune node announcements: %w", translate(err))
	}
	res.NodeAnnouncements = tag.RowsAffected()
	if _, err := s.pool.Exec(ctx, `DELETE FROM ingest_batches WHERE committed_at < $1`, now.Add(-24*time.Hour)); err != nil {
		return res, fmt.Errorf("prune batch log: %w", translate(err))
	}
	dropped, err := s.pruneReceipts(ctx, now, cfg.Receipts)
	res.ReceiptPartitions = dropped
	return res, err
}

func (s *Store) pruneReceipts(ctx context.Context, now time.Time, keep time.Duration) (int, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for d := range 3 {
			name, from, to := receiptPartition(now.Add(time.Duration(d) * 24 * time.Hour))
			if err := createReceiptPartition(ctx, tx, name, from, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("create receipt partitions: %w", translate(err))
	}
	rows, err := s.pool.Query(ctx, `
		SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'receipts'`)
	if err != nil {
		return 0, fmt.Errorf("list receipt partitions: %w", translate(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("list receipt partitions: %w", translate(err))
	}
	oldest := now.Add(-keep)
	dropped := 0
	for _, name := range names {
		day, err := time.Parse("20060102", name[len("receipts_p"):])
		if err != nil {
			continue // not one of ours
		}
		if day.Add(24 * time.Hour).After(oldest) {
			continue
		}
		if _, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("drop receipt partition %s: %w", name, translate(err))
		}
		dropped++
	}
	return dropped, nil
}

// RetentionJob runs Prune on a fixed period.
type RetentionJob struct {
	// AfterPrune, when set before Start, is called after each successful prune
	// with its history cut-off, so that in-memory copies of the history can drop
	// the same rows.
	AfterPrune func(cutoff time.Time)

	store  *Store
	cfg    RetentionConfig
	every  time.Duration
	logger *slog.Logger
	now    func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRetentionJob returns a job that prunes store every period.
func NewRetentionJob(store *Store, cfg RetentionConfig, every time.Duration, logger *slog.Logger) *RetentionJob {
	return &RetentionJob{store: store, cfg: cfg, every: every, logger: logger.With("component", "retention"), now: time.Now}
}

// Start runs a prune now and then every period until Stop or ctx ends.
func (j *RetentionJob) Start(ctx context.Context) {
	ctx, j.cancel = context.WithCancel(ctx)
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		ticker := time.NewTicker(j.every)
		defer ticker.Stop()
		for {
			j.runOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

func (j *RetentionJob) runOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	now := j.now()
	res, err := j.store.Prune(ctx, now, j.cfg)
	if err != nil {
		if ctx.Err() == nil {
			j.logger.Warn("prune failed; will retry next period", "err", err)
		}
		return
	}
	j.logger.Info("pruned history", "updates", res.Updates, "channels", res.Channels,
		"node_announcements", res.NodeAnnouncements, "receipt_partitions", res.ReceiptPartitions,
		"took", time.Since(start).Round(time.Millisecond))
	if j.AfterPrune != nil {
		j.AfterPrune(now.Add(-j.cfg.History))
	}
}

// Stop ends the job and waits for a running prune to finish.
func (j *RetentionJob) Stop() {
	if j.cancel != nil {
		j.cancel()
	}
	j.wg.Wait()
}
