package snapshot

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/rgs"
)

// catchUpTimeout bounds reading the history before a run (building the index
// from scratch at mainnet scale takes tens of seconds).
const catchUpTimeout = 10 * time.Minute

// Source computes deltas from the stored history; *lookup.Index satisfies it.
type Source interface {
	// CatchUp makes sure every row stored before ref is taken into account.
	CatchUp(ctx context.Context, ref time.Time) error
	// Delta returns the delta from last (zero for none) to ref.
	Delta(last, ref time.Time) (*rgs.Delta, lookup.DeltaStats, error)
}

// Config configures a Scheduler.
type Config struct {
	// Directory is the snapshot directory; it is created if missing.
	Directory string
	// Interval is the time between generations, a positive multiple of Grid.
	// Zero means Grid.
	Interval time.Duration
	// Delay is how long after each grid point a scheduled run starts, so that
	// gossip stored just before the boundary is committed. Zero means 5 s.
	Delay time.Duration
	// Grace is how long a superseded generation stays on disk for readers
	// that still have it open. Zero means one hour.
	Grace time.Duration
	// Epoch is the oldest grid point named in the static tree. Zero means
	// DefaultEpoch.
	Epoch time.Time
	// CaughtUpPoll is how often the caught-up signal is checked before the
	// first run. Zero means 5 s.
	CaughtUpPoll time.Duration
	// RetryMin is the wait before a failed scheduled run is tried again; it
	// doubles up to RetryMax, for as long as the run's grid point is the
	// current one. Zero means 10 s and 5 min.
	RetryMin, RetryMax time.Duration
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = Grid
	}
	if c.Delay == 0 {
		c.Delay = 5 * time.Second
	}
	if c.Grace == 0 {
		c.Grace = time.Hour
	}
	if c.Epoch.IsZero() {
		c.Epoch = DefaultEpoch
	}
	if c.CaughtUpPoll == 0 {
		c.CaughtUpPoll = 5 * time.Second
	}
	if c.RetryMin == 0 {
		c.RetryMin = 10 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Minute
	}
}

// Scheduler computes and publishes snapshot generations: on Start, once the
// caught-up signal is true, it runs for the current grid point and then at
// every interval boundary. Run performs one run directly. A Scheduler is safe
// for concurrent use; runs are serialised, also across processes sharing the
// directory.
type Scheduler struct {
	cfg      Config
	src      Source
	caughtUp func() bool
	logger   *slog.Logger
	metrics  *metrics

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// hook, when set by tests, is called at each publishing step.
	hook func(step string)

	failure atomic.Pointer[Failure] // the last scheduled run's failure; nil after a success
}

// Failure describes a failed scheduled run.
type Failure struct {
	Reference time.Time // the grid point it was for
	Err       error
	At        time.Time // when it failed
	NextTry   time.Time // when it is tried again (zero: at the next grid point)
}

// LastFailure returns the failure of the last scheduled run, or nil when it
// succeeded (or none ran yet).
func (s *Scheduler) LastFailure() *Failure { return s.failure.Load() }

// New returns a Scheduler writing to cfg.Directory from src. caughtUp gates
// the scheduled runs (nil means caught up: a database filled by import). reg
// receives the run metrics; nil registers none.
func New(cfg Config, src Source, caughtUp func() bool, reg prometheus.Registerer, logger *slog.Logger) (*Scheduler, error) {
	cfg.setDefaults()
	if cfg.Directory == "" {
		return nil, errors.New("snapshot directory not set")
	}
	if cfg.Interval <= 0 || cfg.Interval%Grid != 0 {
		return nil, fmt.Errorf("snapshot interval %s is not a positive multiple of %s", cfg.Interval, Grid)
	}
	if caughtUp == nil {
		caughtUp = func() bool { return true }
	}
	s := &Scheduler{cfg: cfg, src: src, caughtUp: caughtUp, logger: logger.With("component", "snapshot"), metrics: newMetrics()}
	if reg != nil {
		if err := s.metrics.register(reg); err != nil {
			return nil, fmt.Errorf("register snapshot metrics: %w", err)
		}
	}
	return s, nil
}

// Start runs the schedule in the background until ctx ends or Stop.
func (s *Scheduler) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop(ctx)
	}()
}

// Stop stops the schedule and waits for a run in progress to end; the run is
// cancelled and leaves the published generation in place.
func (s *Scheduler) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
}

func (s *Scheduler) loop(ctx context.Context) {
	if !s.caughtUp() {
		s.logger.Info("waiting for the downloader to catch up before the first snapshot")
		t := time.NewTicker(s.cfg.CaughtUpPoll)
		defer t.Stop()
		for !s.caughtUp() {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
	s.scheduled(ctx, true)
	c := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	c.Schedule(GridSchedule{Interval: s.cfg.Interval, Delay: s.cfg.Delay}, cron.FuncJob(func() { s.scheduled(ctx, false) }))
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
}

// scheduled runs for the current grid point and logs the outcome. At start
// it skips a grid point that already has a generation (a restart). A failed
// run is tried again with backoff (RetryMin doubling to RetryMax) while its
// grid point is the current one.
func (s *Scheduler) scheduled(ctx context.Context, first bool) {
	ref := ReferenceFor(time.Now(), s.cfg.Interval)
	if first {
		if m, err := s.Current(); err == nil && m != nil && m.Reference >= ref.Unix() {
			s.logger.Info("current generation is up to date", "reference", m.Reference)
			return
		}
	}
	wait := s.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		_, err := s.Run(ctx, ref)
		if err == nil {
			if attempt > 1 {
				s.logger.Info("snapshot run succeeded after retrying", "reference", ref.Unix(), "attempts", attempt)
			}
			s.failure.Store(nil)
			return
		}
		if ctx.Err() != nil {
			return
		}
		f := &Failure{Reference: ref, Err: err, At: time.Now()}
		if next := f.At.Add(wait); next.Before(ref.Add(s.cfg.Interval)) {
			f.NextTry = next
		}
		s.failure.Store(f)
		published := "no generation is published yet"
		if m, cerr := s.Current(); cerr == nil && m != nil {
			published = fmt.Sprintf("generation %d stays published", m.Reference)
		}
		if f.NextTry.IsZero() {
			s.logger.Error("snapshot run failed; next try at the next grid point", "reference", ref.Unix(), "attempt", attempt,
				"published", published, "err", err)
			return
		}
		s.logger.Error("snapshot run failed; retrying", "reference", ref.Unix(), "attempt", attempt, "retry_in", wait,
			"published", published, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, s.cfg.RetryMax)
	}
}

// Current returns the manifest of the published generation, or nil if none.
func (s *Scheduler) Current() (*Manifest, error) {
	name, err := currentTarget(s.cfg.Directory)
	if err != nil || name == "" {
		return nil, err
	}
	return ReadManifest(filepath.Join(s.cfg.Directory, GenerationsDir, name))
}

func (s *Scheduler) step(name string) {
	if s.hook != nil {
		s.hook(name)
	}
}

// Run computes the generation for at rounded down to the interval and
// publishes it: every file is written and fsynced in a temporary directory
// that is renamed into place, then the current link is switched with a
// rename. Until that last rename readers see the previous generation, also if
// the process dies. A reference older than the published one is refused.
func (s *Scheduler) Run(ctx context.Context, at time.Time) (*Manifest, error) {
	start := time.Now()
	ref := ReferenceFor(at, s.cfg.Interval)
	m, err := s.run(ctx, ref, start)
	elapsed := time.Since(start)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			s.metrics.runs.WithLabelValues("cancelled").Inc()
			return nil, err
		}
		s.metrics.runs.WithLabelValues("error").Inc()
		s.metrics.failed.Set(1)
		return nil, err
	}
	s.metrics.runs.WithLabelValues("ok").Inc()
	s.metrics.failed.Set(0)
	s.metrics.duration.Observe(elapsed.Seconds())
	s.metrics.lastDuration.Set(elapsed.Seconds())
	s.metrics.lastSuccess.Set(float64(time.Now().Unix()))
	s.metrics.reference.Set(float64(m.Reference))
	for _, f := range m.Files {
		s.metrics.size.WithLabelValues(strconv.Itoa(f.Version), fileLabel(f)).Set(float64(f.Size))
	}
	s.logger.Info("published snapshot generation", "reference", m.Reference, "files", len(m.Files),
		"static_links", m.StaticLinks, "duration", elapsed.Round(time.Millisecond))
	return m, nil
}

func fileLabel(f FileInfo) string {
	if f.Kind == KindScope {
		return (time.Duration(f.Scope) * time.Second).String()
	}
	return f.Kind
}

func (s *Scheduler) run(ctx context.Context, ref, start time.Time) (*Manifest, error) {
	dir := s.cfg.Directory
	if err := os.MkdirAll(filepath.Join(dir, GenerationsDir), 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot directory: %w", err)
	}
	unlock, err := lockDirectory(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	current, err := currentTarget(dir)
	if err != nil {
		return nil, err
	}
	if n, err := removeOrphans(dir, current); err != nil {
		return nil, err
	} else if n > 0 {
		s.logger.Warn("removed what an interrupted run left", "entries", n)
	}
	if r, _, ok := parseGenerationName(current); ok && r > ref.Unix() {
		return nil, fmt.Errorf("reference time %d is older than the published generation's %d", ref.Unix(), r)
	}
	cctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	err = s.src.CatchUp(cctx, ref)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("catch up to %d: %w", ref.Unix(), err)
	}

	created := time.Now()
	name := generationName(ref, created)
	b := &builder{tmp: filepath.Join(dir, GenerationsDir, tmpPrefix+name)}
	renamed := false
	defer func() {
		if !renamed {
			os.RemoveAll(b.tmp)
		}
	}()
	for _, d := range []string{b.tmp, filepath.Join(b.tmp, "v1"), filepath.Join(b.tmp, "v2")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("create generation: %w", err)
		}
	}
	m := &Manifest{
		Format: manifestFormat, Reference: ref.Unix(), Interval: int64(s.cfg.Interval / time.Second),
		StaticEpoch: s.cfg.Epoch.Unix(),
	}
	type job struct {
		kind  string
		scope time.Duration
		last  time.Time
	}
	var jobs []job
	for _, sc := range Scopes(s.cfg.Interval) {
		jobs = append(jobs, job{KindScope, sc, ref.Add(-sc)})
	}
	jobs = append(jobs, job{kind: KindFull}, job{kind: KindEmpty, last: ref})
	var files []encoded
	var chain [32]byte
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		var d *rgs.Delta
		if j.kind == KindEmpty {
			// The empty delta carries nothing but the chain and R.
			d = &rgs.Delta{ChainHash: chain, Timestamp: uint32(ref.Unix())}
		} else {
			var err error
			if d, _, err = s.src.Delta(j.last, ref); err != nil {
				return nil, fmt.Errorf("compute %s delta: %w", j.kind, err)
			}
			chain = d.ChainHash
		}
		computed := time.Since(t0)
		base := j.kind
		if j.kind == KindScope {
			base = fmt.Sprintf("scope-%dh", j.scope/time.Hour)
		}
		for _, v := range []int{rgs.Version1, rgs.Version2} {
			tv := time.Now()
			data, err := d.Encode(v)
			if err != nil {
				return nil, fmt.Errorf("encode %s v%d: %w", base, v, err)
			}
			info := FileInfo{
				Name: fmt.Sprintf("v%d/%s.bin", v, base), Version: v, Kind: j.kind,
				Scope: int64(j.scope / time.Second), Last: max(j.last.Unix(), 0),
				Announcements: len(d.Announcements), Updates: len(d.Updates),
			}
			if j.kind == KindFull {
				info.Last = 0
			}
			if v == rgs.Version2 {
				info.Nodes = len(d.Nodes)
			}
			files = append(files, encoded{info: info, data: data, encoded: computed + time.Since(tv)})
		}
		if i == 0 {
			s.step("files")
		}
	}
	if err := compressAll(ctx, files); err != nil {
		return nil, err
	}
	infos := map[int][]FileInfo{}
	for i := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f := &files[i]
		tw := time.Now()
		if err := b.writeFile(f, files); err != nil {
			return nil, err
		}
		info := b.files[len(b.files)-1]
		info.DurationSeconds = (f.encoded + f.compressed + time.Since(tw)).Seconds()
		infos[info.Version] = append(infos[info.Version], info)
	}
	m.Files = append(infos[rgs.Version1], infos[rgs.Version2]...)
	m.ChainHash = hex.EncodeToString(chain[:])
	for _, d := range []string{filepath.Join(b.tmp, "v1"), filepath.Join(b.tmp, "v2")} {
		if err := syncDir(d); err != nil {
			return nil, err
		}
	}
	links, err := writeStatic(ctx, b.tmp, m)
	if err != nil {
		return nil, err
	}
	m.StaticLinks = links
	s.step("static")
	m.Created = time.Now().UTC().Truncate(time.Second)
	m.DurationSeconds = time.Since(start).Seconds()
	if err := writeManifest(b.tmp, m); err != nil {
		return nil, err
	}
	if err := syncDir(b.tmp); err != nil {
		return nil, err
	}
	s.step("manifest")
	final := filepath.Join(dir, GenerationsDir, name)
	if err := os.Rename(b.tmp, final); err != nil {
		return nil, fmt.Errorf("rename generation: %w", err)
	}
	renamed = true
	if err := syncDir(filepath.Join(dir, GenerationsDir)); err != nil {
		return nil, err
	}
	s.step("renamed")
	if err := switchCurrent(dir, name); err != nil {
		return nil, err
	}
	s.step("switched")
	if n, err := removeExpired(dir, name, s.cfg.Grace, time.Now()); err != nil {
		s.logger.Warn("could not remove old generations", "err", err)
	} else if n > 0 {
		s.logger.Info("removed old generations", "count", n)
	}
	return m, nil
}

// GridSchedule is a cron schedule firing Delay after every multiple of
// Interval since the Unix epoch (UTC), whatever the interval: 3 h gives
// 00:00:05, 03:00:05, …; 9 h stays aligned to the epoch, which a cron spec
// could not express.
type GridSchedule struct {
	Interval time.Duration
	Delay    time.Duration
}

// Next returns the first firing time after t.
func (g GridSchedule) Next(t time.Time) time.Time {
	return ReferenceFor(t.Add(-g.Delay), g.Interval).Add(g.Interval + g.Delay)
}

// metrics are the Scheduler's Prometheus metrics.
type metrics struct {
	runs         *prometheus.CounterVec
	failed       prometheus.Gauge
	duration     prometheus.Histogram
	lastDuration prometheus.Gauge
	lastSuccess  prometheus.Gauge
	reference    prometheus.Gauge
	size         *prometheus.GaugeVec
}

func newMetrics() *metrics {
	return &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lnsync_snapshot_runs_total", Help: "Snapshot runs by result (ok, error, cancelled).",
		}, []string{"result"}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lnsync_snapshot_last_run_failed", Help: "1 if the last snapshot run failed (the previous generation, if any, is still served).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lnsync_snapshot_run_duration_seconds", Help: "Wall time of successful snapshot runs.",
			Buckets: []float64{.1, .5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
		}),
		lastDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lnsync_snapshot_last_duration_seconds", Help: "Wall time of the last successful snapshot run.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lnsync_snapshot_last_success_timestamp_seconds", Help: "Unix time the last generation was published.",
		}),
		reference: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lnsync_snapshot_reference_timestamp_seconds", Help: "Reference time R of the last generation published by this process.",
		}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lnsync_snapshot_file_bytes", Help: "Size of each file of the last generation, by format version and scope.",
		}, []string{"version", "scope"}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.runs, m.failed, m.duration, m.lastDuration, m.lastSuccess, m.reference, m.size} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// CheckDirectory makes sure dir exists, creating it if needed, and takes
// new files: what every generation written into it needs.
func CheckDirectory(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot be created: %w", err)
	}
	f, err := os.CreateTemp(dir, ".lnsync-write-check-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
