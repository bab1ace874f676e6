// Command lnsync-bench runs lnsync's mainnet-scale benchmark (package
// harness) on a history written by lnsync-gen and prints one table, also
// written with every detail as JSON:
//
//	lnsync-bench -data DIR -db URL [-out DIR] [-results FILE]
//	lnsync-bench serve -dir SNAPSHOTS ADDR
//
// `make bench` builds everything, generates (or reuses) the history and runs
// it. -db names a Postgres server: the benchmark drops and recreates the
// databases NAME and NAME_ingest on it (-database NAME, default
// lnsync_bench). serve is the HTTP
// server of the comparison with nginx: lnsync's server on a snapshot
// directory, without the downloader and scheduler.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/bench/gen"
	"github.com/lnsync/lnsync/bench/harness"
	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/server"
	"github.com/lnsync/lnsync/snapshot"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lnsync-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		return serve(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("lnsync-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "directory of a history written by lnsync-gen (required)")
	dbURL := fs.String("db", "", "Postgres server URL (required); its database name is replaced by -database")
	dbName := fs.String("database", "lnsync_bench", "database to recreate for the history; NAME_ingest is recreated for the ingest run")
	withHTTP := fs.Bool("http", true, "compare HTTP serving with nginx (needs nginx and wrk)")
	out := fs.String("out", "bench/out/run", "working directory: configuration, snapshots, nginx files")
	results := fs.String("results", "bench/results.json", "where to write the results as JSON")
	lnsyncBin := fs.String("lnsync", "bin/lnsync", "the lnsync binary (its snapshot command is measured)")
	loadpeerBin := fs.String("loadpeer", "bin/lnsync-loadpeer", "the lnsync-loadpeer binary")
	ingestDays := fs.Int("ingest-days", 1, "days of history streamed through the load peer after the initial graph")
	conns := fs.String("http-connections", "64,256", "wrk connection counts")
	rounds := fs.Int("http-rounds", 2, "wrk rounds per server and connection count")
	duration := fs.Duration("http-duration", 8*time.Second, "length of one wrk run")
	generated := fs.Int64("generated-seconds", -1, "how long generating the history took in this run (-1: it was reused)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *dbURL == "" {
		fs.Usage()
		return errors.New("-data and -db are required")
	}
	var connections []int
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-http-connections %q: want positive integers separated by commas", *conns)
		}
		connections = append(connections, n)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	began := time.Now()
	step := func(format string, a ...any) {
		fmt.Fprintf(stderr, "[%5.0fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, a...))
	}

	m, err := readManifest(*data)
	if err != nil {
		return err
	}
	chain, err := chainHash(m.Chain)
	if err != nil {
		return err
	}
	var res harness.Results
	res.Machine.Cores, res.Machine.CPU, res.Machine.Go = runtime.NumCPU(), cpuModel(), runtime.Version()
	res.Dataset.Dir, res.Dataset.Start, res.Dataset.Days = *data, m.Start, m.Days
	res.Dataset.Channels, res.Dataset.Nodes = m.Channels, m.Nodes
	res.Dataset.Messages = int64(m.Totals.ChannelAnnouncements + m.Totals.ChannelUpdates + m.Totals.NodeAnnouncements)
	if *generated >= 0 {
		res.Dataset.Generated, res.Dataset.GenerateWallS = true, *generated
	}
	files := []string{filepath.Join(*data, gen.InitialFile)}
	for d := range m.Days {
		files = append(files, filepath.Join(*data, gen.DayFile(d)))
	}
	if *ingestDays < 0 || *ingestDays > m.Days {
		return fmt.Errorf("-ingest-days %d: the history has %d days", *ingestDays, m.Days)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}

	// 1. The history, into a fresh database.
	mainURL, err := freshDatabase(ctx, *dbURL, *dbName)
	if err != nil {
		return err
	}
	store, err := openMigrated(ctx, mainURL, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	step("loading %d messages of %d files into %s", res.Dataset.Messages, len(files), *dbName)
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, BatchSize: 20000, QueueSize: 100000}, logger)
	w.Start(ctx)
	load, channels, err := harness.LoadTrusted(ctx, w, files, 100)
	w.Stop()
	if err != nil {
		return err
	}
	res.Load, res.LoadRowsPerSec = load, float64(load.Inserted)/load.Seconds
	step("loaded: %d rows in %.0f s (%.0f rows/s), %d sampled signatures valid", load.Inserted, load.Seconds, res.LoadRowsPerSec, load.Checked)

	// 2. Raw signature verification, then ingestion of the same messages
	// through the load peer.
	stream := files[:1+*ingestDays]
	checks, err := harness.SignatureChecks(stream, channels, 200_000)
	if err != nil {
		return err
	}
	if res.VerifyPerSecond, err = harness.VerifyRate(checks, 5*time.Second); err != nil {
		return err
	}
	step("raw signature verification: %.0f sigs/s on %d cores", res.VerifyPerSecond, runtime.GOMAXPROCS(0))
	var expect int64
	for _, f := range m.Files[:len(stream)] {
		expect += int64(f.ChannelAnnouncements + f.ChannelUpdates + f.NodeAnnouncements)
	}
	step("ingesting %d messages (%s) through the load peer into %s_ingest", expect, strings.Join(baseNames(stream), ", "), *dbName)
	if res.Ingest, err = ingest(ctx, *dbURL, *dbName+"_ingest", *loadpeerBin, stream, chain, time.Unix(m.Start, 0), expect, logger); err != nil {
		return err
	}
	step("ingested: %d accepted of %d in %.1f s (%.0f msgs/s, %.0f sigs/s)", res.Ingest.Accepted, res.Ingest.Messages,
		res.Ingest.Seconds, res.Ingest.PerSecond, res.Ingest.SignaturesPerSecond)

	// 3. A full snapshot run by `lnsync snapshot`, at the end of the history.
	ref := time.Unix(m.Start+int64(m.Days)*86400, 0).UTC()
	snapDir, err := filepath.Abs(filepath.Join(*out, "snapshots"))
	if err != nil {
		return err
	}
	if err := os.RemoveAll(snapDir); err != nil {
		return err
	}
	cfgPath := filepath.Join(*out, "lnsync.toml")
	if err := writeConfig(cfgPath, mainURL, snapDir); err != nil {
		return err
	}
	step("lnsync snapshot -at %s", ref.Format(time.RFC3339))
	if res.Snapshot, err = harness.RunSnapshot(ctx, *lnsyncBin, cfgPath, snapDir, ref); err != nil {
		return err
	}
	step("snapshot: %.1f s generation, %.1f s process, peak RSS %.2f GB", res.Snapshot.RunSeconds, res.Snapshot.WallSeconds, float64(res.Snapshot.PeakRSSBytes)/1e9)

	// 4. Dynamic deltas from an index of the same database.
	index := lookup.NewIndex(store, chain, logger)
	t0 := time.Now()
	if err := index.CatchUp(ctx, ref); err != nil {
		return err
	}
	res.IndexLoadSeconds = time.Since(t0).Seconds()
	step("index loaded in %.1f s; measuring deltas", res.IndexLoadSeconds)
	windows := []time.Duration{3 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	if res.Deltas, err = harness.MeasureDeltas(ctx, index, ref, windows, 5, 200, 10*time.Second); err != nil {
		return err
	}
	index = nil
	runtime.GC()

	// 5. HTTP: lnsync's server against nginx on the same files.
	if *withHTTP {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		step("HTTP: lnsync against nginx, %v connections, %d rounds of %s", connections, *rounds, *duration)
		res.HTTP, err = harness.CompareHTTP(ctx, harness.HTTPConfig{
			Snapshots: snapDir, Reference: res.Snapshot.Reference, Serve: []string{self, "serve", "-dir", snapDir},
			WorkDir: filepath.Join(*out, "nginx"), Connections: connections, Rounds: *rounds, Duration: *duration, Threads: 2,
		})
		if err != nil {
			return err
		}
	}

	res.TotalSeconds = time.Since(began).Seconds()
	b, err := json.MarshalIndent(&res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*results, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	res.WriteTable(stdout)
	fmt.Fprintf(stdout, "results: %s\n", *results)
	return nil
}

// ingest starts the load peer on the stream files and measures the
// downloader against it in a fresh database. The downloader's clock starts
// half a day after the history's start, so that every message of the
// initial graph (timestamps up to 13 days earlier) and of the first day
// passes the two-week and one-day time rules.
func ingest(ctx context.Context, dbURL, dbName, loadpeerBin string, stream []string, chain [32]byte, start time.Time,
	expect int64, logger *slog.Logger) (harness.IngestResult, error) {
	var res harness.IngestResult
	ingestURL, err := freshDatabase(ctx, dbURL, dbName)
	if err != nil {
		return res, err
	}
	store, err := openMigrated(ctx, ingestURL, logger)
	if err != nil {
		return res, err
	}
	defer store.Close()
	peerCtx, stopPeer := context.WithCancel(ctx)
	cmd := exec.CommandContext(peerCtx, loadpeerBin, append([]string{"-listen", "127.0.0.1:0"}, stream...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		stopPeer()
		return res, err
	}
	defer func() {
		stopPeer()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(pipe).ReadString('\n')
	if err != nil {
		return res, fmt.Errorf("load peer: %w", err)
	}
	peer, err := config.ParsePeer(strings.TrimSpace(line))
	if err != nil {
		return res, fmt.Errorf("load peer printed %q: %w", line, err)
	}
	go io.Copy(io.Discard, pipe)
	t0, clock0 := time.Now(), start.Add(12*time.Hour)
	clock := func() time.Time { return clock0.Add(time.Since(t0)) }
	return harness.Ingest(ctx, store, peer, chain, clock, expect, logger)
}

// freshDatabase drops and recreates the database name on the server of
// serverURL and returns its URL.
func freshDatabase(ctx context.Context, serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("-db: %w", err)
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func openMigrated(ctx context.Context, dbURL string, logger *slog.Logger) (*persistence.Store, error) {
	store, err := persistence.Open(ctx, dbURL, 8)
	if err != nil {
		return nil, err
	}
	if _, err := store.Migrate(ctx, logger); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// writeConfig writes the configuration `lnsync snapshot` runs with.
func writeConfig(path, dbURL, snapDir string) error {
	cfg := fmt.Sprintf("network = \"mainnet\"\nlog_level = \"warn\"\n\n[database]\nurl = %q\n\n[snapshot]\ndirectory = %q\n", dbURL, snapDir)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func readManifest(dir string) (*gen.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, gen.ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("-data: %w (write a history with lnsync-gen first)", err)
	}
	var m gen.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", gen.ManifestFile, err)
	}
	if len(m.Files) != m.Days+1 {
		return nil, fmt.Errorf("%s: %d files for %d days", gen.ManifestFile, len(m.Files), m.Days)
	}
	return &m, nil
}

// chainHash reads the manifest's chain hash, which is in display order
// (as block explorers print it), into wire order.
func chainHash(s string) ([32]byte, error) {
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return [32]byte{}, fmt.Errorf("manifest chain_hash %q: %w", s, err)
	}
	return *h, nil
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// serve runs lnsync's HTTP server on a snapshot directory until interrupted,
// after printing "serving DIR on ADDR".
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lnsync-bench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "snapshot directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 1 {
		return errors.New("usage: lnsync-bench serve -dir SNAPSHOTS ADDR")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cat := snapshot.NewCatalog(*dir, 0, logger)
	cat.Start(ctx)
	defer cat.Stop()
	if cat.Current() == nil {
		return fmt.Errorf("no generation in %s", *dir)
	}
	srv := server.New(server.Options{Listen: fs.Arg(0), Registry: prometheus.NewRegistry(), Logger: logger, Snapshots: cat})
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving %s on %s\n", *dir, srv.Addr())
	<-ctx.Done()
	srv.Stop()
	return nil
}
