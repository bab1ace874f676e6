package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/persistence"
)

// cmdExport implements `lnsync export -from T -to T [-format csv|parquet]
// [-out DIR]`: it writes the receipts, the gossip messages and the peers of a
// window as CSV or Parquet files for DuckDB, pandas and the like.
func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", `Usage: lnsync export -from TIME -to TIME [-format csv|parquet] [-out DIR] [-config PATH]

Writes the window [from, to) as three files in DIR, named .csv or .parquet:
  receipts      received_at, peer_id, msg_hash, msg_type, size: each peer's
                first delivery of each message
  messages      msg_hash, msg_type, seen, scid, direction, node_id,
                timestamp, size, signed: the gossip messages stored in the
                window (msg_hash links the two files)
  peers         peer_id, node_id, address
TIME is RFC 3339 or Unix seconds. Receipts are kept only for
retention.receipts.

CSV writes times as RFC 3339 with microseconds, node_id and signed as hex and
a missing value as an empty field. Parquet (zstd, row groups of 65536 rows)
writes received_at and seen as TIMESTAMP(MICROS, UTC), node_id and signed as
raw bytes, scid as UINT64, msg_type and direction as INT16, and a missing
value as null; timestamp stays the message's Unix seconds in both.`, stderr)
	configPath := fs.String("config", "", configUsage)
	fromFlag := fs.String("from", "", "start of the window (inclusive)")
	toFlag := fs.String("to", "", "end of the window (exclusive)")
	format := fs.String("format", "csv", "output format: csv or parquet")
	out := fs.String("out", ".", "directory for the output files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	from, errFrom := parseExportTime(*fromFlag)
	to, errTo := parseExportTime(*toFlag)
	switch {
	case errFrom != nil || errTo != nil:
		fmt.Fprintln(stderr, "lnsync export: -from and -to are required, as RFC 3339 or Unix seconds")
		return errUsage
	case !from.Before(to):
		fmt.Fprintln(stderr, "lnsync export: -from must be before -to")
		return errUsage
	}
	if *format != "csv" && *format != "parquet" {
		fmt.Fprintf(stderr, "lnsync export: unknown -format %q (want csv or parquet)\n", *format)
		return errUsage
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.Database.URL == "" {
		return &config.Error{Key: "database.url", Msg: "not set (set it in the config file or LNSYNC_DATABASE_URL)"}
	}
	conn, err := pgx.Connect(ctx, cfg.Database.URL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	// One read-only snapshot for all three files.
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	win := exportWindow{tx: tx, from: from, to: to}
	for _, f := range []struct {
		name   string
		export func(context.Context, string, string, exportWindow) (int64, error)
	}{
		{"receipts", exportFile(readReceipts)},
		{"messages", exportFile(readMessages)},
		{"peers", exportFile(readPeers)},
	} {
		path := filepath.Join(*out, f.name+"."+*format)
		n, err := f.export(ctx, path, *format, win)
		if err != nil {
			return fmt.Errorf("export %s: %w", filepath.Base(path), err)
		}
		fmt.Fprintf(stdout, "%s: %d rows\n", path, n)
	}
	return nil
}

func parseExportTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return time.Time{}, errors.New("negative time")
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// exportWindow is what the readers of an export share: one read-only
// snapshot and the window [from, to).
type exportWindow struct {
	tx       pgx.Tx
	from, to time.Time
}

// exportRow is a row of one exported file. The struct's parquet tags are the
// Parquet schema and name the columns, in order, for both formats; csv
// formats the row into rec, which has one field per column.
type exportRow interface {
	receiptRow | messageRow | peerRow
	csv(rec []string)
}

// rowReader streams the rows of one file from Postgres to emit, in order, and
// returns how many it read. Rows are passed by value and share no memory
// with each other, so emit may keep them: pgx copies bytea into a new slice
// and allocates a new value for each non-NULL pointer it scans into.
type rowReader[R exportRow] func(ctx context.Context, win exportWindow, emit func(R) error) (int64, error)

// rowSink writes the rows of one file in a format. Close ends the file (CSV
// flush, Parquet footer) but not the writer under it.
type rowSink[R exportRow] interface {
	Write(R) error
	Close() error
}

// exportFile returns the function that writes read's rows to path in format.
func exportFile[R exportRow](read rowReader[R]) func(context.Context, string, string, exportWindow) (int64, error) {
	return func(ctx context.Context, path, format string, win exportWindow) (int64, error) {
		var n int64
		err := writeFile(ctx, path, func(w io.Writer) error {
			var sink rowSink[R]
			if format == "parquet" {
				sink = newParquetSink[R](w)
			} else {
				sink = newCSVSink[R](w)
			}
			var err error
			if n, err = read(ctx, win, sink.Write); err != nil {
				return err
			}
			return sink.Close()
		})
		return n, err
	}
}

// writeFile writes a file through a temporary name, so an interrupted
// export never leaves a truncated file under the final name.
func writeFile(ctx context.Context, path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// exportColumns returns the column names of R, in order.
func exportColumns[R exportRow]() []string {
	fields := parquet.SchemaOf(new(R)).Fields()
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name()
	}
	return names
}

type csvSink[R exportRow] struct {
	w   *csv.Writer
	rec []string
	err error // writing the header
}

func newCSVSink[R exportRow](w io.Writer) *csvSink[R] {
	columns := exportColumns[R]()
	s := &csvSink[R]{w: csv.NewWriter(w), rec: make([]string, len(columns))}
	s.err = s.w.Write(columns)
	return s
}

func (s *csvSink[R]) Write(r R) error {
	if s.err != nil {
		return s.err
	}
	r.csv(s.rec)
	return s.w.Write(s.rec)
}

func (s *csvSink[R]) Close() error {
	if s.err != nil {
		return s.err
	}
	s.w.Flush()
	return s.w.Error()
}

// parquetRowGroup is the number of rows per Parquet row group: the rows the
// writer holds (encoded and compressed) before it writes them out, a few
// megabytes at gossip sizes. DuckDB and Arrow read row groups in parallel.
const parquetRowGroup = 1 << 16

// parquetBatch is how many rows are handed to the Parquet writer at once.
const parquetBatch = 1024

type parquetSink[R exportRow] struct {
	w   *parquet.GenericWriter[R]
	buf []R
}

func newParquetSink[R exportRow](w io.Writer) *parquetSink[R] {
	return &parquetSink[R]{
		w: parquet.NewGenericWriter[R](w,
			parquet.Compression(&parquet.Zstd),
			parquet.MaxRowsPerRowGroup(parquetRowGroup),
			parquet.CreatedBy("lnsync", version, ""),
		),
		buf: make([]R, 0, parquetBatch),
	}
}

func (s *parquetSink[R]) Write(r R) error {
	s.buf = append(s.buf, r)
	if len(s.buf) < cap(s.buf) {
		return nil
	}
	return s.flush()
}

func (s *parquetSink[R]) flush() error {
	_, err := s.w.Write(s.buf)
	clear(s.buf) // drop the references to the rows' byte slices
	s.buf = s.buf[:0]
	return err
}

// Close writes the buffered rows, the last row group and the footer. A file
// without rows still has a schema and is valid.
func (s *parquetSink[R]) Close() error {
	if err := s.flush(); err != nil {
		return err
	}
	return s.w.Close()
}

const csvTime = "2006-01-02T15:04:05.000000Z07:00"

// receiptRow is a row of receipts: a peer's first delivery of a message.
type receiptRow struct {
	ReceivedAt time.Time `parquet:"received_at,timestamp(microsecond:utc)"`
	PeerID     int32     `parquet:"peer_id"`
	MsgHash    int64     `parquet:"msg_hash"` // first 8 bytes of sha256(wire message), big-endian
	MsgType    int16     `parquet:"msg_type"`
	Size       int32     `parquet:"size"`
}

func (r receiptRow) csv(rec []string) {
	rec[0] = r.ReceivedAt.UTC().Format(csvTime)
	rec[1] = strconv.Itoa(int(r.PeerID))
	rec[2] = strconv.FormatInt(r.MsgHash, 10)
	rec[3] = strconv.Itoa(int(r.MsgType))
	rec[4] = strconv.Itoa(int(r.Size))
}

func readReceipts(ctx context.Context, win exportWindow, emit func(receiptRow) error) (int64, error) {
	rows, err := win.tx.Query(ctx, `
		SELECT received_at, peer_id, msg_hash, msg_type, size FROM receipts
		WHERE received_at >= $1 AND received_at < $2`, win.from, win.to)
	if err != nil {
		return 0, err
	}
	var r receiptRow
	tag, err := pgx.ForEachRow(rows, []any{&r.ReceivedAt, &r.PeerID, &r.MsgHash, &r.MsgType, &r.Size}, func() error {
		return emit(r)
	})
	return tag.RowsAffected(), err
}

// messageRow is a row of messages: a stored gossip message. The nullable
// columns are those its type does not have.
type messageRow struct {
	MsgHash   int64     `parquet:"msg_hash"`
	MsgType   int16     `parquet:"msg_type"`
	Seen      time.Time `parquet:"seen,timestamp(microsecond:utc)"`
	SCID      *uint64   `parquet:"scid"`      // announcements and updates
	Direction *int16    `parquet:"direction"` // updates
	NodeID    []byte    `parquet:"node_id,optional"`
	Timestamp *int64    `parquet:"timestamp"` // updates and node announcements: Unix seconds
	Size      int32     `parquet:"size"`
	Signed    []byte    `parquet:"signed"`
}

func (r messageRow) csv(rec []string) {
	rec[0] = strconv.FormatInt(r.MsgHash, 10)
	rec[1] = strconv.Itoa(int(r.MsgType))
	rec[2] = r.Seen.UTC().Format(csvTime)
	rec[3], rec[4], rec[6] = "", "", ""
	if r.SCID != nil {
		rec[3] = strconv.FormatUint(*r.SCID, 10)
	}
	if r.Direction != nil {
		rec[4] = strconv.Itoa(int(*r.Direction))
	}
	rec[5] = hex.EncodeToString(r.NodeID)
	if r.Timestamp != nil {
		rec[6] = strconv.FormatInt(*r.Timestamp, 10)
	}
	rec[7] = strconv.Itoa(int(r.Size))
	rec[8] = hex.EncodeToString(r.Signed)
}

func readMessages(ctx context.Context, win exportWindow, emit func(messageRow) error) (int64, error) {
	rows, err := win.tx.Query(ctx, `
		SELECT 256::smallint, seen, scid, NULL::smallint, NULL::bytea, NULL::bigint, signed FROM channel_announcements
		WHERE seen >= $1 AND seen < $2
		UNION ALL
		SELECT 258, seen, scid, direction, NULL, timestamp, signed FROM channel_updates
		WHERE seen >= $1 AND seen < $2
		UNION ALL
		SELECT 257, seen, NULL, NULL, node_id, timestamp, signed FROM node_announcements
		WHERE seen >= $1 AND seen < $2`, win.from, win.to)
	if err != nil {
		return 0, err
	}
	var (
		r    messageRow
		scid *int64 // the bigint holds the uint64 bit pattern
	)
	tag, err := pgx.ForEachRow(rows, []any{&r.MsgType, &r.Seen, &scid, &r.Direction, &r.NodeID, &r.Timestamp, &r.Signed}, func() error {
		r.MsgHash = persistence.MessageHash(r.Signed)
		r.Size = int32(len(r.Signed))
		r.SCID = nil
		if scid != nil {
			v := uint64(*scid)
			r.SCID = &v
		}
		return emit(r)
	})
	return tag.RowsAffected(), err
}

// peerRow is a row of peers. Every peer is exported, whatever the window.
type peerRow struct {
	PeerID  int32  `parquet:"peer_id"`
	NodeID  []byte `parquet:"node_id"`
	Address string `parquet:"address"`
}

func (r peerRow) csv(rec []string) {
	rec[0] = strconv.Itoa(int(r.PeerID))
	rec[1] = hex.EncodeToString(r.NodeID)
	rec[2] = r.Address
}

func readPeers(ctx context.Context, win exportWindow, emit func(peerRow) error) (int64, error) {
	rows, err := win.tx.Query(ctx, `SELECT id, node_id, address FROM peers ORDER BY id`)
	if err != nil {
		return 0, err
	}
	var r peerRow
	tag, err := pgx.ForEachRow(rows, []any{&r.PeerID, &r.NodeID, &r.Address}, func() error {
		return emit(r)
	})
	return tag.RowsAffected(), err
}
