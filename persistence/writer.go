package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// ingestLockKey is the advisory lock every batch transaction holds. Batches
// therefore commit one at a time, in the order of their seen clock, and a
// reader that briefly takes the lock in shared mode gets a cut that no
// uncommitted batch straddles.
const ingestLockKey = 0x6c6e73796e630002

// ErrClosed is returned by Submit and Flush after the Writer has stopped
// accepting records.
var ErrClosed = errors.New("writer closed")

// WriterConfig tunes a Writer. Zero fields take the documented defaults.
type WriterConfig struct {
	// QueueSize is how many records may wait before Submit blocks. Default 50000.
	QueueSize int
	// BatchSize is the most records committed in one transaction. Default 5000.
	BatchSize int
	// FlushInterval is the longest a record waits in a partial batch. Default 200ms.
	FlushInterval time.Duration
	// KeepReceiveTimes stores each record's ReceivedAt as its seen time
	// (imports of recorded gossip). When false, seen is the commit clock of the
	// batch, which never goes backwards (live gossip).
	KeepReceiveTimes bool
	// Imported marks every row this writer stores as imported (lnsync
	// import): retention keeps such rows for their own window.
	Imported bool
	// TxTimeout bounds one batch transaction. Default 30s.
	TxTimeout time.Duration
	// MaxBackoff caps the wait between retries of a failed batch. Default 5s.
	MaxBackoff time.Duration
	// ShutdownTimeout bounds shutdown whatever the database does: from Stop
	// (or the end of Start's context) the Writer keeps trying to commit what
	// is queued for at most this long, then gives up on everything left,
	// counts it (WriterStats.Dropped) and logs it once. Default 25s.
	ShutdownTimeout time.Duration
}

func (c *WriterConfig) setDefaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 50000
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 5000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.TxTimeout <= 0 {
		c.TxTimeout = 30 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 25 * time.Second
	}
}

// WriterStats are cumulative counters of a Writer.
type WriterStats struct {
	Submitted int64 // records accepted by Submit
	Committed int64 // records in committed batches (stored or duplicate)
	Inserted  int64 // rows that were new
	Batches   int64 // committed transactions
	Retries   int64 // failed batch attempts that were retried
	Dropped   int64 // records given up at shutdown because the database stayed down
	Queued    int   // records waiting now
}

// Writer stores records in batches from a bounded queue. Submit blocks while
// the queue is full, so a slow or absent database slows the producers down
// instead of growing memory. A batch that fails is retried, unchanged, until it
// commits: a database restart loses nothing that was submitted. Stop flushes
// what is queued.
//
// A Writer is safe for concurrent use. Create it with NewWriter, then Start and
// Stop it once.
type Writer struct {
	store  *Store
	cfg    WriterConfig
	logger *slog.Logger

	queue chan item

	mu       sync.RWMutex // held shared by Submit while it enqueues; exclusive to close
	closed   bool
	stopping chan struct{}
	done     chan struct{}
	// expired is closed ShutdownTimeout after closing: every write attempt
	// then ends, and what is left is dropped.
	expired    chan struct{}
	expiredCtx context.Context
	expire     context.CancelFunc
	notWritten atomic.Int64 // records dropped at shutdown, logged once at the end

	partitions map[string]bool // receipt partitions known to exist; loop goroutine only

	submitted, committed, inserted, batches, retries, dropped atomic.Int64
}

type item struct {
	rec   Record
	flush chan error // non-nil for a Flush marker
}

// NewWriter returns a Writer for store. It does nothing until Start.
func NewWriter(store *Store, cfg WriterConfig, logger *slog.Logger) *Writer {
	cfg.setDefaults()
	w := &Writer{
		store:      store,
		cfg:        cfg,
		logger:     logger.With("component", "writer"),
		queue:      make(chan item, cfg.QueueSize),
		stopping:   make(chan struct{}),
		done:       make(chan struct{}),
		expired:    make(chan struct{}),
		partitions: make(map[string]bool),
	}
	w.expiredCtx, w.expire = context.WithCancel(context.Background())
	return w
}

// Start launches the writing goroutine and returns. Cancelling ctx closes the
// Writer to new records as Stop does; Stop must still be called to wait.
func (w *Writer) Start(ctx context.Context) {
	go w.loop()
	go func() {
		select {
		case <-ctx.Done():
			w.close()
		case <-w.done:
		}
	}()
}

// Stop closes the Writer to new records, commits everything queued and
// returns when the writing goroutine has ended.
func (w *Writer) Stop() {
	w.close()
	<-w.done
}

func (w *Writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.stopping)
		time.AfterFunc(w.cfg.ShutdownTimeout, func() {
			close(w.expired)
			w.expire()
		})
	}
}

// Submit queues rec, blocking while the queue is full. It returns nil once
// the record is queued; the record is then committed eventually unless the
// database stays down through shutdown. It returns ctx's error or ErrClosed
// when the record was not queued.
func (w *Writer) Submit(ctx context.Context, rec Record) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.queue <- item{rec: rec}:
		w.submitted.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush waits until every record submitted before the call is committed.
func (w *Writer) Flush(ctx context.Context) error {
	ch := make(chan error, 1)
	if err := w.enqueueMarker(ctx, ch); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) enqueueMarker(ctx context.Context, ch chan error) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.queue <- item{flush: ch}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the Writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{
		Submitted: w.submitted.Load(),
		Committed: w.committed.Load(),
		Inserted:  w.inserted.Load(),
		Batches:   w.batches.Load(),
		Retries:   w.retries.Load(),
		Dropped:   w.dropped.Load(),
		Queued:    len(w.queue),
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	defer func() {
		if n := w.notWritten.Load(); n > 0 {
			w.logger.Error("records not written: the database was unavailable until the shutdown deadline",
				"records", n, "deadline", w.cfg.ShutdownTimeout)
		}
	}()
	for {
		recs, markers, more := w.collect()
		if len(recs) > 0 {
			err := w.writeWithRetry(recs)
			if err != nil {
				w.dropped.Add(int64(len(recs)))
				w.notWritten.Add(int64(len(recs)))
			}
			for _, m := range markers {
				m <- err
			}
		} else {
			for _, m := range markers {
				m <- nil
			}
		}
		if !more {
			return
		}
	}
}

// collect gathers the next batch. It returns more=false once the Writer is
// closed and the queue is empty.
func (w *Writer) collect() (recs []Record, markers []chan error, more bool) {
	add := func(it item) bool {
		if it.flush != nil {
			markers = append(markers, it.flush)
			return true // commit now
		}
		recs = append(recs, it.rec)
		return len(recs) >= w.cfg.BatchSize
	}
	// Wait for the first item, or for closing with an empty queue.
	select {
	case it := <-w.queue:
		if add(it) {
			return recs, markers, true
		}
	case <-w.stopping:
		select {
		case it := <-w.queue:
			if add(it) {
				return recs, markers, true
			}
		default:
			return nil, nil, false
		}
	}
	timer := time.NewTimer(w.cfg.FlushInterval)
	defer timer.Stop()
	for {
		select {
		case it := <-w.queue:
			if add(it) {
				return recs, markers, true
			}
		case <-timer.C:
			return recs, markers, true
		case <-w.stopping:
			// Closing: take what is queued without waiting for the timer.
			for {
				select {
				case it := <-w.queue:
					if add(it) {
						return recs, markers, true
					}
				default:
					return recs, markers, true
				}
			}
		}
	}
}

// writeWithRetry commits recs, retrying with backoff until it succeeds or,
// once the Writer is closing, until the shutdown deadline (ErrShutdownDeadline).
func (w *Writer) writeWithRetry(recs []Record) error {
	backoff := 50 * time.Millisecond
	batchID := rand.Int64()
	for attempt := 1; ; attempt++ {
		select {
		case <-w.expired:
			return ErrShutdownDeadline
		default:
		}
		err := w.writeBatch(batchID, recs)
		if err == nil {
			if attempt > 1 {
				w.logger.Info("batch committed after retry", "attempts", attempt, "records", len(recs))
			}
			return nil
		}
		w.retries.Add(1)
		if attempt == 1 || attempt&(attempt-1) == 0 {
			// Attempts 1, 2, 4, 8 …: an outage is not a line per retry.
			w.logger.Warn("batch failed, retrying", "attempt", attempt, "records", len(recs), "backoff", backoff, "err", err)
		}
		select {
		case <-time.After(backoff):
		case <-w.expired:
			return ErrShutdownDeadline
		}
		backoff = min(backoff*2, w.cfg.MaxBackoff)
	}
}

// ErrShutdownDeadline is what a batch left uncommitted at the shutdown
// deadline reports to Flush.
var ErrShutdownDeadline = errors.New("not written: the database was unavailable until the shutdown deadline")

// batchRows splits a batch by table.
type batchRows struct {
	anns     []*ChannelAnnouncement
	updates  []*ChannelUpdate
	nodes    []*NodeAnnouncement
	receipts []*Receipt
	maxRecv  time.Time
}

func splitBatch(recs []Record) batchRows {
	var b batchRows
	for _, r := range recs {
		var t time.Time
		switch r := r.(type) {
		case *ChannelAnnouncement:
			b.anns = append(b.anns, r)
			t = r.ReceivedAt
		case *ChannelUpdate:
			b.updates = append(b.updates, r)
			t = r.ReceivedAt
		case *NodeAnnouncement:
			b.nodes = append(b.nodes, r)
			t = r.ReceivedAt
		case *Receipt:
			b.receipts = append(b.receipts, r)
		}
		if t.After(b.maxRecv) {
			b.maxRecv = t
		}
	}
	return b
}

// errAlreadyCommitted aborts a retried batch whose earlier attempt committed.
var errAlreadyCommitted = errors.New("batch already committed")

func (w *Writer) writeBatch(batchID int64, recs []Record) error {
	// An attempt ends at its own timeout or at the shutdown deadline.
	ctx, cancel := context.WithTimeout(w.expiredCtx, w.cfg.TxTimeout)
	defer cancel()
	b := splitBatch(recs)
	var newParts []string
	var inserted int64
	err := pgx.BeginFunc(ctx, w.store.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(ingestLockKey)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO ingest_batches (id) VALUES ($1) ON CONFLICT DO NOTHING`, batchID)
		if err != nil {
			return fmt.Errorf("record batch: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errAlreadyCommitted
		}
		var clock time.Time
		if w.cfg.KeepReceiveTimes {
			err = tx.QueryRow(ctx, `UPDATE ingest_clock SET last_seen = greatest(last_seen, $1) RETURNING last_seen`, b.maxRecv).Scan(&clock)
		} else {
			err = tx.QueryRow(ctx, `UPDATE ingest_clock SET last_seen = greatest(last_seen, clock_timestamp()) RETURNING last_seen`).Scan(&clock)
		}
		if err != nil {
			return fmt.Errorf("advance clock: %w", err)
		}
		seen := func(received time.Time) time.Time {
			if w.cfg.KeepReceiveTimes {
				return received
			}
			return clock
		}
		imp := w.cfg.Imported
		n, err := insertAnnouncements(ctx, tx, b.anns, seen, imp)
		if err != nil {
			return err
		}
		inserted += n
		if n, err = insertUpdates(ctx, tx, b.updates, seen, imp); err != nil {
			return err
		}
		inserted += n
		if n, err = insertNodes(ctx, tx, b.nodes, seen, imp); err != nil {
			return err
		}
		inserted += n
		if newParts, err = w.ensurePartitions(ctx, tx, b.receipts); err != nil {
			return err
		}
		n, err = insertReceipts(ctx, tx, b.receipts)
		inserted += n
		return err
	})
	if errors.Is(err, errAlreadyCommitted) {
		// The previous attempt committed but its acknowledgement was lost.
		w.logger.Info("retried batch had already committed", "records", len(recs))
		w.committed.Add(int64(len(recs)))
		w.batches.Add(1)
		return nil
	}
	if err != nil {
		return fmt.Errorf("write batch: %w", translate(err))
	}
	for _, p := range newParts {
		w.partitions[p] = true
	}
	w.committed.Add(int64(len(recs)))
	w.inserted.Add(inserted)
	w.batches.Add(1)
	return nil
}

// stage is how one kind of record reaches its table: copied into a temporary
// staging table (created once per connection, emptied at commit), then moved
// into place with one INSERT ... ON CONFLICT.
type stage struct {
	what    string   // names the records in errors
	table   string   // the staging table
	columns string   // its column definitions
	names   []string // the columns copied, in row order
	insert  string   // moves the staged rows into place
}

// write stages n rows, the i-th given by row, and returns how many the insert
// added.
func (st stage) write(ctx context.Context, tx pgx.Tx, n int, row func(i int) []any) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	// Constant identifiers only: nothing here comes from a record.
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+st.table+" ("+st.columns+") ON COMMIT DELETE ROWS"); err != nil {
		return 0, fmt.Errorf("stage %s: %w", st.what, err)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{st.table}, st.names,
		pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", st.what, err)
	}
	tag, err := tx.Exec(ctx, st.insert)
	if err != nil {
		return 0, fmt.Errorf("insert %s: %w", st.what, err)
	}
	return tag.RowsAffected(), nil
}

var announcementStage = stage{
	what:    "channel announcements",
	table:   "stage_channel_announcements",
	columns: "scid bigint, node_id_1 bytea, node_id_2 bytea, features bytea, funding_sats bigint, signed bytea, seen timestamptz, imported boolean",
	names:   []string{"scid", "node_id_1", "node_id_2", "features", "funding_sats", "signed", "seen", "imported"},
	// A later copy can only fill in an unknown funding amount; the first seen stays.
	insert: `
		INSERT INTO channel_announcements (scid, node_id_1, node_id_2, features, funding_sats, signed, seen, imported)
		SELECT DISTINCT ON (scid) scid, node_id_1, node_id_2, features, funding_sats, signed, seen, imported
		FROM stage_channel_announcements
		ORDER BY scid, funding_sats IS NULL, seen
		ON CONFLICT (scid) DO UPDATE SET funding_sats = EXCLUDED.funding_sats
		WHERE channel_announcements.funding_sats IS NULL AND EXCLUDED.funding_sats IS NOT NULL`,
}

var updateStage = stage{
	what:  "channel updates",
	table: "stage_channel_updates",
	columns: `scid bigint, direction smallint, timestamp bigint, message_flags smallint, channel_flags smallint,
		cltv_expiry_delta integer, htlc_minimum_msat bigint, fee_base_msat bigint,
		fee_proportional_millionths bigint, htlc_maximum_msat bigint, signed bytea, seen timestamptz, imported boolean`,
	names: []string{"scid", "direction", "timestamp", "message_flags", "channel_flags", "cltv_expiry_delta",
		"htlc_minimum_msat", "fee_base_msat", "fee_proportional_millionths", "htlc_maximum_msat", "signed", "seen", "imported"},
	insert: `
		INSERT INTO channel_updates (scid, direction, timestamp, message_flags, channel_flags, cltv_expiry_delta,
			htlc_minimum_msat, fee_base_msat, fee_proportional_millionths, htlc_maximum_msat, signed, seen, imported)
		SELECT scid, direction, timestamp, message_flags, channel_flags, cltv_expiry_delta,
			htlc_minimum_msat, fee_base_msat, fee_proportional_millionths, htlc_maximum_msat, signed, seen, imported
		FROM stage_channel_updates
		ON CONFLICT ON CONSTRAINT channel_updates_version DO NOTHING`,
}

var nodeStage = stage{
	what:    "node announcements",
	table:   "stage_node_announcements",
	columns: "node_id bytea, timestamp bigint, features bytea, addresses bytea, alias bytea, rgb bytea, signed bytea, seen timestamptz, imported boolean",
	names:   []string{"node_id", "timestamp", "features", "addresses", "alias", "rgb", "signed", "seen", "imported"},
	insert: `
		INSERT INTO node_announcements (node_id, timestamp, features, addresses, alias, rgb, signed, seen, imported)
		SELECT node_id, timestamp, features, addresses, alias, rgb, signed, seen, imported
		FROM stage_node_announcements
		ON CONFLICT ON CONSTRAINT node_announcements_version DO NOTHING`,
}

func insertAnnouncements(ctx context.Context, tx pgx.Tx, anns []*ChannelAnnouncement, seen func(time.Time) time.Time, imported bool) (int64, error) {
	return announcementStage.write(ctx, tx, len(anns), func(i int) []any {
		a := anns[i]
		var funding *int64
		if a.FundingKnown {
			v := int64(a.FundingSats)
			funding = &v
		}
		return []any{int64(a.SCID), a.NodeID1[:], a.NodeID2[:], a.Features, funding, a.Signed, seen(a.ReceivedAt), imported}
	})
}

func insertUpdates(ctx context.Context, tx pgx.Tx, ups []*ChannelUpdate, seen func(time.Time) time.Time, imported bool) (int64, error) {
	return updateStage.write(ctx, tx, len(ups), func(i int) []any {
		u := ups[i]
		return []any{int64(u.SCID), int16(u.Direction), int64(u.Timestamp), int16(u.MessageFlags), int16(u.ChannelFlags),
			int32(u.CLTVExpiryDelta), int64(u.HTLCMinimumMsat), int64(u.FeeBaseMsat),
			int64(u.FeeProportionalMillionths), int64(u.HTLCMaximumMsat), u.Signed, seen(u.ReceivedAt), imported}
	})
}

func insertNodes(ctx context.Context, tx pgx.Tx, nodes []*NodeAnnouncement, seen func(time.Time) time.Time, imported bool) (int64, error) {
	return nodeStage.write(ctx, tx, len(nodes), func(i int) []any {
		n := nodes[i]
		return []any{n.NodeID[:], int64(n.Timestamp), n.Features, n.Addresses, n.Alias[:], n.RGB[:], n.Signed, seen(n.ReceivedAt), imported}
	})
}

// receiptPartition names the daily partition holding t and its bounds.
func receiptPartition(t time.Time) (name string, from, to time.Time) {
	from = t.UTC().Truncate(24 * time.Hour)
	return "receipts_p" + from.Format("20060102"), from, from.Add(24 * time.Hour)
}

// ensurePartitions creates the daily receipt partitions the batch needs and
// returns the names it created or confirmed.
func (w *Writer) ensurePartitions(ctx context.Context, tx pgx.Tx, receipts []*Receipt) ([]string, error) {
	var names []string
	for _, r := range receipts {
		name, from, to := receiptPartition(r.ReceivedAt)
		if w.partitions[name] || slices.Contains(names, name) {
			continue
		}
		if err := createReceiptPartition(ctx, tx, name, from, to); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

func createReceiptPartition(ctx context.Context, tx pgx.Tx, name string, from, to time.Time) error {
	// Identifiers cannot be parameters; name is built from a date only.
	sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF receipts FOR VALUES FROM ('%s') TO ('%s')`,
		pgx.Identifier{name}.Sanitize(), from.Format(time.RFC3339), to.Format(time.RFC3339))
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create receipt partition %s: %w", name, err)
	}
	return nil
}

func insertReceipts(ctx context.Context, tx pgx.Tx, receipts []*Receipt) (int64, error) {
	if len(receipts) == 0 {
		return 0, nil
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"receipts"},
		[]string{"received_at", "peer_id", "msg_hash", "msg_type", "size"},
		pgx.CopyFromSlice(len(receipts), func(i int) ([]any, error) {
			r := receipts[i]
			return []any{r.ReceivedAt, r.PeerID, r.MsgHash, int16(r.MsgType), r.Size}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("copy receipts: %w", err)
	}
	return n, nil
}
