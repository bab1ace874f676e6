package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/persistence"
)

// cmdImport implements `lnsync import [-config PATH] FILE...`: it validates
// the gossip messages of GSP v1 files (gzip-compressed when the name ends in
// .gz; - reads stdin) exactly as live gossip is validated and stores what is
// valid, seen at the files' own clock, then prints a summary.
func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", `Usage: lnsync import [-config PATH] FILE...

Validates the gossip in GSP v1 files (lnresearch archive format, .gz
accepted, - for stdin) and stores what is valid, as the downloader does for
live peers. The clock of the time rules and the stored receive time come
from the file: its receive-time records, or else the newest gossip
timestamp read so far. Framing glitches are skipped and counted. Afterwards
"lnsync snapshot -at TIME" builds snapshots as of any time the files cover.`, stderr)
	configPath := fs.String("config", "", configUsage)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	cfg, logger, store, err := openConfigured(ctx, *configPath, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx, logger); err != nil {
		return err
	}
	writer := persistence.NewWriter(store, persistence.WriterConfig{
		QueueSize:        cfg.Database.WriteQueue,
		BatchSize:        cfg.Database.WriteBatch,
		FlushInterval:    cfg.Database.FlushInterval.Std(),
		KeepReceiveTimes: true,
		Imported:         true,
		ShutdownTimeout:  cfg.WriterShutdownTimeout(),
	}, logger)
	writer.Start(ctx)
	rep, err := download.ImportFiles(ctx, download.ImportConfig{ChainHash: cfg.ChainHash(), FundingREST: cfg.Download.BitcoindREST}, store, writer, logger, fs.Args(), openGossipFile)
	writer.Stop()
	if n := writer.Stats().Dropped; n > 0 || (err != nil && ctx.Err() != nil) {
		// Interrupted, or the database went away: nothing stored is wrong,
		// and an import is idempotent.
		return fmt.Errorf("import incomplete (%d records not written): run the same `lnsync import` again to complete it: %w", n, errors.Join(err, ctx.Err()))
	}
	if err != nil {
		return err
	}
	for _, f := range rep.Files {
		fmt.Fprintf(stdout, "%s: %d messages, clock %s … %s, %d bytes skipped in %d resyncs\n", f.Path, f.Stats.Messages,
			f.Stats.FirstTime.Format("2006-01-02T15:04:05Z"), f.Stats.LastTime.Format("2006-01-02T15:04:05Z"),
			f.Stats.Skipped.SkippedBytes, f.Stats.Skipped.Resyncs)
	}
	v := rep.Verdicts
	fmt.Fprintf(stdout, "valid: %d channel announcements, %d channel updates, %d node announcements; %d new rows\n",
		v.Get(download.KindChannelAnnouncement, download.ReasonOK), v.Get(download.KindChannelUpdate, download.ReasonOK),
		v.Get(download.KindNodeAnnouncement, download.ReasonOK), writer.Stats().Inserted)
	m := v.Map()
	keys := slices.Sorted(maps.Keys(m))
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	fmt.Fprintf(stdout, "verdicts: %s\n", strings.Join(parts, " "))
	if n := v.Get(download.KindChannelUpdate, download.ReasonWaiting) + v.Get(download.KindNodeAnnouncement, download.ReasonWaiting); n > 0 {
		fmt.Fprintf(stdout, "waiting: %d messages whose channel is not stored yet are kept unverified; they are validated when its announcement arrives (import or live)\n", n)
	}
	if cfg.Retention.Imported == 0 {
		fmt.Fprintln(stdout, `retention: imported data is kept for good (retention.imported = "0")`)
	} else {
		fmt.Fprintf(stdout, "retention: imported data is kept for %s (retention.imported); serve warns one run before pruning it\n", cfg.Retention.Imported)
	}
	// Stored or already stored: anything else means the input was not the
	// gossip it was meant to be.
	var usable int64
	for _, k := range []download.Kind{download.KindChannelAnnouncement, download.KindChannelUpdate, download.KindNodeAnnouncement} {
		usable += v.Get(k, download.ReasonOK) + v.Get(k, download.ReasonDuplicate) + v.Get(k, download.ReasonWaiting)
	}
	if usable == 0 {
		var read int64
		for _, f := range rep.Files {
			read += f.Stats.Messages
		}
		return fmt.Errorf("%w: %d messages read from %d files, none valid (verdicts above); nothing was stored",
			errNothingImported, read, len(rep.Files))
	}
	return nil
}

// errNothingImported is the import of files that hold no valid gossip.
var errNothingImported = errors.New("nothing to import")

// openGossipFile opens path, "-" for stdin, decompressing .gz files.
func openGossipFile(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(bufio.NewReader(os.Stdin)), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}
