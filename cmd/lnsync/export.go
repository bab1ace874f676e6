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

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/persistence"
)

// errNoParquet explains why -format parquet is refused.
var errNoParquet = errors.New("parquet output needs a Parquet writer (github.com/parquet-go/parquet-go), which lnsync does not depend on yet; use -format csv (DuckDB: SELECT * FROM 'receipts.csv')")

// cmdExport implements `lnsync export -from T -to T [-format csv] [-out DIR]`:
// it writes the receipts, the gossip messages and the peers of a window as
// CSV files for DuckDB, pandas and the like.
func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", `Usage: lnsync export -from TIME -to TIME [-format csv] [-out DIR] [-config PATH]

Writes the window [from, to) as CSV files in DIR:
  receipts.csv  received_at, peer_id, msg_hash, msg_type, size: each peer's
                first delivery of each message
  messages.csv  msg_hash, msg_type, seen, scid, direction, node_id,
                timestamp, size, signed: the gossip messages stored in the
                window, signed as hex (msg_hash links the two files)
  peers.csv     peer_id, node_id, address
TIME is RFC 3339 or Unix seconds. Receipts are kept only for
retention.receipts.`, stderr)
	configPath := fs.String("config", "./config.toml", "configuration file")
	fromFlag := fs.String("from", "", "start of the window (inclusive)")
	toFlag := fs.String("to", "", "end of the window (exclusive)")
	format := fs.String("format", "csv", "output format: csv (parquet is not available yet)")
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
	switch *format {
	case "csv":
	case "parquet":
		return errNoParquet
	default:
		fmt.Fprintf(stderr, "lnsync export: unknown -format %q (want csv)\n", *format)
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
	for _, f := range []struct {
		name  string
		write func(context.Context, pgx.Tx, *csv.Writer, time.Time, time.Time) (int64, error)
	}{
		{"receipts.csv", exportReceipts},
		{"messages.csv", exportMessages},
		{"peers.csv", exportPeers},
	} {
		path := filepath.Join(*out, f.name)
		n, err := writeCSVFile(ctx, path, func(w *csv.Writer) (int64, error) { return f.write(ctx, tx, w, from, to) })
		if err != nil {
			return fmt.Errorf("export %s: %w", f.name, err)
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

// writeCSVFile writes a file through a temporary name, so an interrupted
// export never leaves a truncated file under the final name.
func writeCSVFile(ctx context.Context, path string, write func(*csv.Writer) (int64, error)) (int64, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := csv.NewWriter(bw)
	n, err := write(cw)
	if err == nil {
		cw.Flush()
		err = cw.Error()
	}
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
		return 0, err
	}
	return n, os.Rename(tmp, path)
}

const csvTime = "2006-01-02T15:04:05.000000Z07:00"

func exportReceipts(ctx context.Context, tx pgx.Tx, w *csv.Writer, from, to time.Time) (int64, error) {
	if err := w.Write([]string{"received_at", "peer_id", "msg_hash", "msg_type", "size"}); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, `
		SELECT received_at, peer_id, msg_hash, msg_type, size FROM receipts
		WHERE received_at >= $1 AND received_at < $2`, from, to)
	if err != nil {
		return 0, err
	}
	var (
		at         time.Time
		peer, size int32
		hash       int64
		typ        int16
		rec        = make([]string, 5)
	)
	tag, err := pgx.ForEachRow(rows, []any{&at, &peer, &hash, &typ, &size}, func() error {
		rec[0] = at.UTC().Format(csvTime)
		rec[1] = strconv.Itoa(int(peer))
		rec[2] = strconv.FormatInt(hash, 10)
		rec[3] = strconv.Itoa(int(typ))
		rec[4] = strconv.Itoa(int(size))
		return w.Write(rec)
	})
	return tag.RowsAffected(), err
}

func exportMessages(ctx context.Context, tx pgx.Tx, w *csv.Writer, from, to time.Time) (int64, error) {
	if err := w.Write([]string{"msg_hash", "msg_type", "seen", "scid", "direction", "node_id", "timestamp", "size", "signed"}); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, `
		SELECT 256, seen, scid, NULL::smallint, NULL::bytea, NULL::bigint, signed FROM channel_announcements
		WHERE seen >= $1 AND seen < $2
		UNION ALL
		SELECT 258, seen, scid, direction, NULL, timestamp, signed FROM channel_updates
		WHERE seen >= $1 AND seen < $2
		UNION ALL
		SELECT 257, seen, NULL, NULL, node_id, timestamp, signed FROM node_announcements
		WHERE seen >= $1 AND seen < $2`, from, to)
	if err != nil {
		return 0, err
	}
	var (
		typ    int32
		seen   time.Time
		scid   *int64
		dir    *int16
		node   []byte
		ts     *int64
		signed []byte
		rec    = make([]string, 9)
	)
	tag, err := pgx.ForEachRow(rows, []any{&typ, &seen, &scid, &dir, &node, &ts, &signed}, func() error {
		rec[0] = strconv.FormatInt(persistence.MessageHash(signed), 10)
		rec[1] = strconv.Itoa(int(typ))
		rec[2] = seen.UTC().Format(csvTime)
		rec[3], rec[4], rec[6] = "", "", ""
		if scid != nil {
			rec[3] = strconv.FormatUint(uint64(*scid), 10)
		}
		if dir != nil {
			rec[4] = strconv.Itoa(int(*dir))
		}
		rec[5] = hex.EncodeToString(node)
		if ts != nil {
			rec[6] = strconv.FormatInt(*ts, 10)
		}
		rec[7] = strconv.Itoa(len(signed))
		rec[8] = hex.EncodeToString(signed)
		return w.Write(rec)
	})
	return tag.RowsAffected(), err
}

func exportPeers(ctx context.Context, tx pgx.Tx, w *csv.Writer, _, _ time.Time) (int64, error) {
	if err := w.Write([]string{"peer_id", "node_id", "address"}); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, `SELECT id, node_id, address FROM peers ORDER BY id`)
	if err != nil {
		return 0, err
	}
	var (
		id   int32
		node []byte
		addr string
		rec  = make([]string, 3)
	)
	tag, err := pgx.ForEachRow(rows, []any{&id, &node, &addr}, func() error {
		rec[0] = strconv.Itoa(int(id))
		rec[1] = hex.EncodeToString(node)
		rec[2] = addr
		return w.Write(rec)
	})
	return tag.RowsAffected(), err
}
