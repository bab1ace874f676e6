package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/reconcile"
	"github.com/lnsync/lnsync/server"
	"github.com/lnsync/lnsync/snapshot"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", `Usage: lnsync serve [-config PATH]

Runs lnsync: applies migrations, then collects gossip from the configured
peers, computes snapshots on schedule and serves the HTTP API until SIGINT or
SIGTERM.`, stderr)
	configPath := fs.String("config", "", configUsage)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	logger := cfg.Logger(stderr)
	logger.Info("starting lnsync", "version", version, "network", cfg.Network, "peers", len(cfg.Download.Peers))
	// A folder lnsync cannot use stops start-up with its reason instead of
	// failing every generation later.
	if err := snapshot.CheckDirectory(cfg.Snapshot.Directory); err != nil {
		return &config.Error{Key: "snapshot.directory", Value: cfg.Snapshot.Directory, Msg: err.Error()}
	}
	if len(cfg.Download.Peers) == 0 {
		logger.Warn("no peers configured (download.peers is empty): nothing will be collected; snapshots hold only gossip already stored or imported")
	}

	store, err := openStoreWithRetry(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx, logger); err != nil {
		return err
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	writer := persistence.NewWriter(store, persistence.WriterConfig{
		QueueSize:       cfg.Database.WriteQueue,
		BatchSize:       cfg.Database.WriteBatch,
		FlushInterval:   cfg.Database.FlushInterval.Std(),
		ShutdownTimeout: cfg.WriterShutdownTimeout(),
	}, logger)
	registerWriterMetrics(registry, writer)
	writer.Start(ctx)
	defer writer.Stop()

	index := lookup.NewIndex(store, cfg.ChainHash(), logger)
	registry.MustRegister(index.Collector())
	retention := persistence.NewRetentionJob(store, persistence.RetentionConfig{
		History:  cfg.Retention.History.Std(),
		Receipts: cfg.Retention.Receipts.Std(),
		Imported: cfg.Retention.Imported.Std(),
	}, cfg.Retention.Every.Std(), logger)
	retention.AfterPrune = func(live, imported time.Time) { index.Prune(live, imported) }
	retention.Start(ctx)
	defer retention.Stop()

	downloader := download.New(download.ConfigFrom(cfg), store, writer, logger)
	if err := downloader.Register(registry); err != nil {
		return err
	}
	if err := downloader.Start(ctx); err != nil {
		return err
	}
	defer downloader.Stop() // before writer.Stop, deferred earlier

	if cfg.Download.BitcoindREST != "" {
		backfill := download.NewFundingBackfill(download.FundingBackfillConfig{REST: cfg.Download.BitcoindREST}, store, index.SetFunding, logger)
		if err := backfill.Start(ctx); err != nil {
			return err
		}
		defer backfill.Stop()
	}

	caughtUp := func() bool { return len(cfg.Download.Peers) == 0 || downloader.CaughtUp() }
	sched, err := snapshot.New(snapshot.Config{
		Directory: cfg.Snapshot.Directory,
		Interval:  cfg.Snapshot.Interval.Std(),
	}, index, caughtUp, registry, logger)
	if err != nil {
		return err
	}
	sched.Start(ctx)
	defer sched.Stop()
	catalog := snapshot.NewCatalog(cfg.Snapshot.Directory, time.Second, logger)
	catalog.Start(ctx)
	defer catalog.Stop()

	proxies, err := cfg.HTTP.Prefixes()
	if err != nil {
		return err
	}
	srv := server.New(server.Options{
		Listen: cfg.HTTP.Listen,
		Clients: server.ClientLimits{InFlight: cfg.HTTP.DynamicPerClient, PerMinute: perMinute(cfg.HTTP.DynamicPerMinute),
			TrustedProxies: proxies},
		Registry: registry,
		Logger:   logger,
		Ready: func(ctx context.Context) (bool, string) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := store.Ping(ctx); err != nil {
				return false, "database unreachable"
			}
			return true, ""
		},
		SnapshotFailure: func() string { return describeFailure(sched.LastFailure()) },
		Unavailable: func(err error) (string, bool) {
			return "database unavailable", persistence.IsUnavailable(err)
		},
		Snapshots:      catalog,
		Dynamic:        index,
		CaughtUp:       caughtUp,
		Peers:          len(cfg.Download.Peers),
		Network:        cfg.Network,
		PeersConnected: downloader.ConnectedPeers,
		PeerStates:     func() any { return downloader.Status() },
		Counts: func(ctx context.Context) (server.Counts, error) {
			c, err := store.Counts(ctx)
			return server.Counts{ChannelAnnouncements: c.ChannelAnnouncements, ChannelUpdates: c.ChannelUpdates,
				NodeAnnouncements: c.NodeAnnouncements, Peers: c.Peers}, err
		},
	})
	recon := reconcile.New(reconcileConfig(cfg), store.Pool(), logger, registry)
	srv.Router().Route("/v1/reconciliation", recon.Routes(srv.Handle))
	recon.Start(ctx)
	defer recon.Stop()

	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Stop()

	<-ctx.Done()
	logger.Info("shutting down")
	return nil
}

// reconcileConfig maps the [reconcile] section onto reconcile.Config. The
// aggregator backfills as far back as receipts are kept.
func reconcileConfig(cfg config.Config) reconcile.Config {
	r := cfg.Reconcile
	return reconcile.Config{
		MaxRawWindow:      r.MaxRawWindow.Std(),
		MaxWindow:         r.MaxWindow.Std(),
		MaxEstimateWindow: r.MaxEstimateWindow.Std(),
		MaxReceipts:       r.MaxReceipts,
		MaxRounds:         r.MaxRounds,
		MaxVerifyRounds:   r.MaxVerifyRounds,
		AggregateEvery:    r.AggregateEvery.Std(),
		Backfill:          cfg.Retention.Receipts.Std(),
		KeepAggregates:    r.KeepAggregates.Std(),
		MemoryBudget:      int64(r.MemoryBudgetMiB) << 20,
		MaxInFlight:       r.MaxInFlight,
	}
}

// openStoreWithRetry connects to the database, waiting up to a minute for it
// to come up (a database and lnsync started together).
func openStoreWithRetry(ctx context.Context, cfg config.Config, logger *slog.Logger) (*persistence.Store, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		store, err := openStore(ctx, cfg)
		if err == nil {
			return store, nil
		}
		// Only an unreachable server is worth waiting for; a bad URL is not.
		if !errors.Is(err, persistence.ErrUnavailable) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		logger.Warn("database not reachable yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func registerWriterMetrics(reg *prometheus.Registry, w *persistence.Writer) {
	counter := func(name, help string, f func(persistence.WriterStats) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(w.Stats())) }))
	}
	counter("lnsync_writer_committed_records_total", "Records committed by the batched writer.", func(s persistence.WriterStats) int64 { return s.Committed })
	counter("lnsync_writer_inserted_rows_total", "Rows the writer inserted (new, not duplicates).", func(s persistence.WriterStats) int64 { return s.Inserted })
	counter("lnsync_writer_batches_total", "Batches the writer committed.", func(s persistence.WriterStats) int64 { return s.Batches })
	counter("lnsync_writer_retries_total", "Batch attempts that failed and were retried.", func(s persistence.WriterStats) int64 { return s.Retries })
	counter("lnsync_writer_dropped_records_total", "Records given up at shutdown because the database stayed down.", func(s persistence.WriterStats) int64 { return s.Dropped })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lnsync_writer_queue_length", Help: "Records waiting for the writer."},
		func() float64 { return float64(w.Stats().Queued) }))
}

// describeFailure says why a snapshot run failed and when it is tried again,
// for /readyz; "" for nil.
func describeFailure(f *snapshot.Failure) string {
	if f == nil {
		return ""
	}
	next := "at the next grid point"
	if !f.NextTry.IsZero() {
		next = "at " + f.NextTry.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("the snapshot run for %s failed at %s (%v); it is tried again %s",
		f.Reference.UTC().Format(time.RFC3339), f.At.UTC().Format(time.RFC3339), f.Err, next)
}

// perMinute maps http.dynamic_per_minute (0: no limit) to
// server.ClientLimits.PerMinute (negative: no limit).
func perMinute(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
