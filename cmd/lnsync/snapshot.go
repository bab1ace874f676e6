package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/snapshot"
)

func cmdSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot", `Usage: lnsync snapshot [-config PATH] [-at TS]

Computes one snapshot generation now, for the reference time TS (Unix
seconds or RFC 3339; default now) rounded down to the snapshot interval,
publishes it atomically in the snapshot directory and exits. A running
lnsync serve picks it up within a second. It refuses a reference time older
than the published generation.`, stderr)
	configPath := fs.String("config", "", configUsage)
	at := fs.String("at", "", "reference time: Unix seconds or RFC 3339 (default now)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ref := time.Now()
	if *at != "" {
		t, err := parseTime(*at)
		if err != nil {
			fmt.Fprintf(stderr, "lnsync snapshot: -at %q: want Unix seconds or RFC 3339\n", *at)
			return errUsage
		}
		ref = t
	}
	cfg, logger, store, err := openConfigured(ctx, *configPath, stderr)
	if err != nil {
		return err
	}
	defer store.Close()

	index := lookup.NewIndex(store, cfg.ChainHash(), logger)
	sched, err := snapshot.New(snapshot.Config{
		Directory: cfg.Snapshot.Directory,
		Interval:  cfg.Snapshot.Interval.Std(),
	}, index, nil, nil, logger)
	if err != nil {
		return err
	}
	m, err := sched.Run(ctx, ref)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "generation %d (%s): %d files, %d static names per version, %.1fs\n",
		m.Reference, time.Unix(m.Reference, 0).UTC().Format(time.RFC3339), len(m.Files), m.StaticLinks, m.DurationSeconds)
	for _, f := range m.Files {
		fmt.Fprintf(stdout, "  %-22s %9d bytes  %9d gzip  %6d announcements  %6d updates  %6d nodes\n",
			f.Name, f.Size, f.GzipSize, f.Announcements, f.Updates, f.Nodes)
	}
	return nil
}

// parseTime accepts Unix seconds or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Parse(time.RFC3339, s)
}
