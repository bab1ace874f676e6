// Command lnsync-bench-http prepares and serves the data of the HTTP load
// benchmark (run.sh): it fills a database with a synthetic gossip history,
// computes snapshot generations with the same code as `lnsync snapshot`
// (reporting cold and warm run times), and serves a snapshot directory with
// the same server as `lnsync serve`, without the downloader.
//
//	lnsync-bench-http fill     -db URL -channels N -nodes N -days N [-update-every D] [-seed N]
//	lnsync-bench-http snapshot -db URL -dir DIR [-runs N]
//	lnsync-bench-http serve    -dir DIR -listen 127.0.0.1:PORT
//
// fill creates the database named in URL if it is missing (through the
// "postgres" database of the same server) and migrates it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/rgs"
	"github.com/lnsync/lnsync/server"
	"github.com/lnsync/lnsync/snapshot"
	"github.com/lnsync/lnsync/snapshot/snapshottest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lnsync-bench-http:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("want a command: fill, snapshot or serve")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	db := fs.String("db", "", "database URL")
	dir := fs.String("dir", "", "snapshot directory")
	listen := fs.String("listen", "127.0.0.1:18080", "listen address")
	channels := fs.Int("channels", 5000, "channels")
	nodes := fs.Int("nodes", 2000, "nodes")
	days := fs.Int("days", 35, "days of history")
	every := fs.Duration("update-every", 48*time.Hour, "mean time between updates of a channel direction")
	seed := fs.Uint64("seed", 1, "generator seed")
	runs := fs.Int("runs", 2, "generations to compute (the first with a cold index)")
	cpuProfile := fs.String("cpuprofile", "", "serve: write a CPU profile of the whole run to this file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "fill":
		return fill(ctx, *db, *channels, *nodes, *days, *every, *seed, logger)
	case "snapshot":
		return snap(ctx, *db, *dir, *runs, logger)
	case "serve":
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		return serve(ctx, *dir, *listen, logger)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// reference is the newest grid point the benchmark data reaches: the last
// 3-hour boundary, minus one interval so that a warm run fits before now.
func reference() time.Time {
	return snapshot.ReferenceFor(time.Now(), snapshot.Grid).Add(-snapshot.Grid)
}

func fill(ctx context.Context, dbURL string, channels, nodes, days int, every time.Duration, seed uint64, logger *slog.Logger) error {
	if err := createDatabase(ctx, dbURL); err != nil {
		return err
	}
	store, err := persistence.Open(ctx, dbURL, 8)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx, logger); err != nil {
		return err
	}
	to := reference().Add(snapshot.Grid)
	t0 := time.Now()
	h := snapshottest.GenerateHistory(snapshottest.HistoryConfig{
		Channels: channels, Nodes: nodes, From: to.Add(-time.Duration(days) * 24 * time.Hour), To: to,
		NewShare: 0.1, UpdateEvery: every, KeepAlive: 6 * 24 * time.Hour, Seed: seed,
	})
	fmt.Printf("generated %d records in %s\n", len(h.Records), time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, BatchSize: 20000, QueueSize: 100000}, logger)
	w.Start(ctx)
	err = h.Submit(ctx, w)
	w.Stop()
	if err != nil {
		return err
	}
	c, err := store.Counts(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("stored in %s: %d channel announcements, %d channel updates, %d node announcements\n",
		time.Since(t0).Round(time.Millisecond), c.ChannelAnnouncements, c.ChannelUpdates, c.NodeAnnouncements)
	return nil
}

func createDatabase(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

func snap(ctx context.Context, dbURL, dir string, runs int, logger *slog.Logger) error {
	store, err := persistence.Open(ctx, dbURL, 8)
	if err != nil {
		return err
	}
	defer store.Close()
	index := lookup.NewIndex(store, rgs.ChainMainnet, logger)
	s, err := snapshot.New(snapshot.Config{Directory: dir}, index, nil, nil, logger)
	if err != nil {
		return err
	}
	ref := reference().Add(-time.Duration(runs-1) * snapshot.Grid)
	for i := range runs {
		t0 := time.Now()
		m, err := s.Run(ctx, ref)
		if err != nil {
			return err
		}
		kind := "warm"
		if i == 0 {
			kind = "cold (index built from the database)"
		}
		st := index.Stats()
		fmt.Printf("generation %d: %s run %.2fs; index %d channels, %d nodes, %d rows; %d static names per version\n",
			m.Reference, kind, time.Since(t0).Seconds(), st.Channels, st.Nodes, st.Rows, m.StaticLinks)
		for _, f := range m.Files {
			fmt.Printf("  %-20s %9d bytes %9d gzip %6d ann %7d upd %6d nodes %6.3fs\n",
				f.Name, f.Size, f.GzipSize, f.Announcements, f.Updates, f.Nodes, f.DurationSeconds)
		}
		ref = ref.Add(snapshot.Grid)
	}
	return nil
}

func serve(ctx context.Context, dir, listen string, logger *slog.Logger) error {
	cat := snapshot.NewCatalog(dir, 0, logger)
	cat.Start(ctx)
	defer cat.Stop()
	if cat.Current() == nil {
		return fmt.Errorf("no generation in %s", dir)
	}
	srv := server.New(server.Options{Listen: listen, Registry: prometheus.NewRegistry(), Logger: logger, Snapshots: cat})
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("serving %s on %s\n", dir, srv.Addr())
	<-ctx.Done()
	srv.Stop()
	return nil
}
