package persistence

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	// Imported is History for rows stored by lnsync import (and the messages
	// of imports still waiting for their channel); zero keeps them for good.
	Imported time.Duration
}

// cutoffs returns the seen cut-off of live rows and of imported ones (the
// zero time, before every row, when imported rows are kept for good).
func (c RetentionConfig) cutoffs(now time.Time) (live, imported time.Time) {
	live = now.Add(-c.History)
	if c.Imported > 0 {
		imported = now.Add(-c.Imported)
	}
	return live, imported
}

// execer runs statements: the pool, or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pruneRows deletes the gossip rows and waiting messages that retention
// drops, live rows before live and imported rows before imported (the zero
// time: none).
func pruneRows(ctx context.Context, db execer, live, imported time.Time) (PruneResult, error) {
	var res PruneResult
	// Every row is held to the window of its source: $1 for live rows, $2 for
	// imported ones ($3 and $4 are the same cut-offs as gossip timestamps).
	// Channels that went silent before the cut-off: everything goes. Each
	// channel direction's newest version is what the unique index gives first.
	tag, err := db.Exec(ctx, `
		WITH dead AS (
			SELECT a.scid FROM channel_announcements a
			WHERE a.seen < CASE WHEN a.imported THEN $2::timestamptz ELSE $1::timestamptz END
			  AND NOT EXISTS (SELECT 1 FROM channel_updates u WHERE u.scid = a.scid
			                  AND u.seen >= CASE WHEN u.imported THEN $2::timestamptz ELSE $1::timestamptz END)
			  AND coalesce((SELECT max(u.timestamp) FROM channel_updates u WHERE u.scid = a.scid), 0)
			      < CASE WHEN a.imported THEN $4::bigint ELSE $3::bigint END
		), gone AS (
			DELETE FROM channel_updates u USING dead WHERE u.scid = dead.scid
		)
		DELETE FROM channel_announcements a USING dead WHERE a.scid = dead.scid`,
		live, imported, unixOrMin(live), unixOrMin(imported))
	if err != nil {
		return res, fmt.Errorf("prune dead channels: %w", translate(err))
	}
	res.Channels = tag.RowsAffected()
	tag, err = db.Exec(ctx, `
		DELETE FROM channel_updates u
		WHERE u.seen < CASE WHEN u.imported THEN $2::timestamptz ELSE $1::timestamptz END
		  AND EXISTS (SELECT 1 FROM channel_updates n
		              WHERE n.scid = u.scid AND n.direction = u.direction
		                AND n.seen < CASE WHEN u.imported THEN $2::timestamptz ELSE $1::timestamptz END AND n.timestamp > u.timestamp)`, live, imported)
	if err != nil {
		return res, fmt.Errorf("prune channel updates: %w", translate(err))
	}
	res.Updates = tag.RowsAffected()
	tag, err = db.Exec(ctx, `
		DELETE FROM node_announcements a
		WHERE a.seen < CASE WHEN a.imported THEN $2::timestamptz ELSE $1::timestamptz END
		  AND EXISTS (SELECT 1 FROM node_announcements n
		              WHERE n.node_id = a.node_id AND n.seen < CASE WHEN a.imported THEN $2::timestamptz ELSE $1::timestamptz END
		                AND n.timestamp > a.timestamp)`, live, imported)
	if err != nil {
		return res, fmt.Errorf("prune node announcements: %w", translate(err))
	}
	res.NodeAnnouncements = tag.RowsAffected()
	tag, err = db.Exec(ctx, `DELETE FROM waiting_messages WHERE received_at < CASE WHEN imported THEN $2::timestamptz ELSE $1::timestamptz END`, live, imported)
	if err != nil {
		return res, fmt.Errorf("prune waiting messages: %w", translate(err))
	}
	res.Waiting = tag.RowsAffected()
	return res, nil
}

// CountImportedToPrune returns how many imported rows a prune with the
// imported cut-off would delete (live rows aside), by running it in a
// transaction that is rolled back.
func (s *Store) CountImportedToPrune(ctx context.Context, imported time.Time) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("count imported rows to prune: %w", translate(err))
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a read-only look: nothing to keep
	res, err := pruneRows(ctx, tx, time.Time{}, imported)
	if err != nil {
		return 0, err
	}
	return res.Updates + res.Channels + res.NodeAnnouncements + res.Waiting, nil
}

// unixOrMin returns t in Unix seconds, or the smallest bigint for the zero
// time (no cut-off).
func unixOrMin(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.Unix()
}

// PruneResult counts what Prune removed.
type PruneResult struct {
	Updates           int64
	Channels          int64
	NodeAnnouncements int64
	ReceiptPartitions int
	// Waiting counts messages dropped from the waiting room.
	Waiting int64
}

// Prune deletes history older than cfg allows as of now and creates the
// receipt partitions for the next two days ahead of the writer.
func (s *Store) Prune(ctx context.Context, now time.Time, cfg RetentionConfig) (PruneResult, error) {
	live, imported := cfg.cutoffs(now)
	res, err := pruneRows(ctx, s.pool, live, imported)
	if err != nil {
		return res, err
	}
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
	// with its cut-offs for live and for imported rows (zero when imported
	// rows are kept), so that in-memory copies of the history can drop the
	// same rows.
	AfterPrune func(live, imported time.Time)

	store  *Store
	cfg    RetentionConfig
	every  time.Duration
	logger *slog.Logger
	now    func() time.Time
	// warned is the imported cut-off announced by the last run's warning,
	// and warnedRows how many rows it named: imported rows are pruned only
	// up to it, and only while no more rows than announced would go.
	warned     time.Time
	warnedRows int64

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
	// Imported rows go only once a warning announced them: this run prunes
	// up to the cut-off the previous run warned about, unless more rows lie
	// below it now than the warning named (an import of old data since),
	// which are announced again first.
	cfg := j.cfg
	_, due := cfg.cutoffs(now)
	if cfg.Imported > 0 {
		cfg.Imported = 0
		if !j.warned.IsZero() {
			n, err := j.store.CountImportedToPrune(ctx, j.warned)
			switch {
			case err != nil:
				j.logger.Warn("counting imported rows to prune failed; keeping them this run", "err", err)
			case n <= j.warnedRows:
				cfg.Imported = now.Sub(j.warned)
			}
		}
	}
	res, err := j.store.Prune(ctx, now, cfg)
	if err != nil {
		if ctx.Err() == nil {
			j.logger.Warn("prune failed; will retry next period", "err", err)
		}
		return
	}
	j.logger.Info("pruned history", "updates", res.Updates, "channels", res.Channels,
		"node_announcements", res.NodeAnnouncements, "waiting", res.Waiting, "receipt_partitions", res.ReceiptPartitions,
		"took", time.Since(start).Round(time.Millisecond))
	if j.AfterPrune != nil {
		j.AfterPrune(cfg.cutoffs(now))
	}
	if !due.IsZero() {
		n, err := j.store.CountImportedToPrune(ctx, due)
		j.warned, j.warnedRows = time.Time{}, 0
		switch {
		case err != nil:
			j.logger.Warn("counting imported rows to prune failed", "err", err)
		case n > 0:
			j.logger.Warn("imported rows older than retention.imported will be pruned at the next run",
				"rows", n, "stored_before", due.UTC().Format(time.RFC3339), "retention_imported", j.cfg.Imported.String(),
				"next_run", now.Add(j.every).UTC().Format(time.RFC3339), "keep_them", `set retention.imported = "0"`)
			j.warned, j.warnedRows = due, n
		}
	}
}

// Stop ends the job and waits for a running prune to finish.
func (j *RetentionJob) Stop() {
	if j.cancel != nil {
		j.cancel()
	}
	j.wg.Wait()
}
