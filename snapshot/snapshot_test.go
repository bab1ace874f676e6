package snapshot

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/rgs"
	"github.com/lnsync/lnsync/snapshot/snapshottest"
)

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

// ref is a reference time on the 3-hour grid.
var ref = time.Date(2026, 1, 10, 3, 0, 0, 0, time.UTC)

// Environment of the re-executed test binary in TestKillMidRun.
const (
	envCrashDir      = "LNSYNC_SNAPSHOT_CRASH_DIR"
	envCrashStep     = "LNSYNC_SNAPSHOT_CRASH_STEP"
	envCrashDatabase = "LNSYNC_SNAPSHOT_CRASH_DATABASE_URL"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envCrashDir); dir != "" {
		crashChild(dir, os.Getenv(envCrashStep), os.Getenv(envCrashDatabase))
		return
	}
	os.Exit(m.Run())
}

// crashChild runs one generation for ref + 3h from the database at dbURL and
// stops at step, announcing it on stdout, until the parent kills it.
func crashChild(dir, step, dbURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	store, err := persistence.Open(ctx, dbURL, 2)
	cancel()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	s, err := New(testConfig(dir), lookup.NewIndex(store, rgs.ChainMainnet, discardLogger()), nil, nil, discardLogger())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	s.hook = func(name string) {
		if name == step {
			fmt.Println("at", name)
			select {}
		}
	}
	_, err = s.Run(context.Background(), ref.Add(3*hour))
	fmt.Println("finished", err)
	os.Exit(1)
}

func testConfig(dir string) Config {
	return Config{Directory: dir, Epoch: ref.Add(-2 * day), CaughtUpPoll: 10 * time.Millisecond}
}

// history is what the tests' databases hold: changes in every scope before
// ref.
var history = snapshottest.ScopedHistory(ref)

// newIndex returns an Index over a fresh test database holding history.
func newIndex(t *testing.T) *lookup.Index {
	t.Helper()
	return snapshottest.NewIndex(t, history)
}

func newScheduler(t *testing.T, cfg Config, src Source) *Scheduler {
	t.Helper()
	s, err := New(cfg, src, nil, nil, snapshottest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScopes(t *testing.T) {
	tests := []struct {
		interval time.Duration
		want     []time.Duration
	}{
		{3 * hour, []time.Duration{3 * hour, 6 * hour, 12 * hour, day, 2 * day, 4 * day, 8 * day, 16 * day, 32 * day}},
		{day, []time.Duration{day, 2 * day, 4 * day, 8 * day, 16 * day, 32 * day}},
		{21 * day, []time.Duration{21 * day}},
		{9 * hour, []time.Duration{9 * hour, 18 * hour, 36 * hour, 72 * hour, 144 * hour, 288 * hour, 576 * hour}},
	}
	for _, tt := range tests {
		t.Run(tt.interval.String(), func(t *testing.T) {
			if got := Scopes(tt.interval); !slices.Equal(got, tt.want) {
				t.Errorf("Scopes(%s) = %v, want %v", tt.interval, got, tt.want)
			}
		})
	}
}

func TestPick(t *testing.T) {
	m := &Manifest{Reference: ref.Unix(), Interval: 3 * 3600}
	for _, v := range []int{1, 2} {
		for _, sc := range Scopes(3 * hour) {
			m.Files = append(m.Files, FileInfo{Name: fmt.Sprintf("v%d/%s", v, sc), Version: v, Kind: KindScope, Scope: int64(sc / time.Second)})
		}
		m.Files = append(m.Files, FileInfo{Name: fmt.Sprintf("v%d/full", v), Version: v, Kind: KindFull},
			FileInfo{Name: fmt.Sprintf("v%d/empty", v), Version: v, Kind: KindEmpty})
	}
	r := ref.Unix()
	tests := []struct {
		name string
		ts   int64
		want string
	}{
		{"zero is full", 0, "full"},
		{"negative is full", -5, "full"},
		{"at R is empty", r, "empty"},
		{"after R is empty", r + 1, "empty"},
		{"far after R is empty", r + 400*86400, "empty"},
		{"one grid point back", r - 3*3600, "3h0m0s"},
		{"just before R rounds down", r - 1, "3h0m0s"},
		{"off the grid rounds down", r - 3*3600 - 1, "6h0m0s"},
		{"nine hours back takes 12h", r - 9*3600, "12h0m0s"},
		{"a day back", r - 86400, "24h0m0s"},
		{"32 days back", r - 32*86400, "768h0m0s"},
		{"older than every scope is full", r - 32*86400 - 1, "full"},
		{"epoch start is full", 1, "full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []int{1, 2} {
				got := m.Pick(v, tt.ts)
				if want := fmt.Sprintf("v%d/%s", v, tt.want); got == nil || got.Name != want {
					t.Errorf("Pick(%d, %d) = %+v, want %s", v, tt.ts, got, want)
				}
			}
		})
	}
	if m.Pick(3, 0) != nil {
		t.Error("Pick of an unknown version is not nil")
	}
}

func TestGridSchedule(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2026, 1, 10, h, m, s, 0, time.UTC) }
	tests := []struct {
		name     string
		interval time.Duration
		now      time.Time
		want     time.Time
	}{
		{"just after a boundary's firing", 3 * hour, at(3, 0, 6), at(6, 0, 5)},
		{"exactly at a firing", 3 * hour, at(3, 0, 5), at(6, 0, 5)},
		{"between boundary and delay", 3 * hour, at(3, 0, 2), at(3, 0, 5)},
		{"mid interval", 3 * hour, at(4, 30, 0), at(6, 0, 5)},
		{"daily", day, at(4, 30, 0), time.Date(2026, 1, 11, 0, 0, 5, 0, time.UTC)},
		// 9 h boundaries are multiples of 9 h since the Unix epoch.
		{"nine hours", 9 * hour, at(4, 30, 0), time.Unix((at(4, 30, 0).Unix()/32400+1)*32400+5, 0).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := GridSchedule{Interval: tt.interval, Delay: 5 * time.Second}
			if got := g.Next(tt.now); !got.Equal(tt.want) {
				t.Errorf("Next(%s) = %s, want %s", tt.now, got, tt.want)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no directory", Config{}},
		{"interval off the grid", Config{Directory: t.TempDir(), Interval: 4 * hour}},
		{"negative interval", Config{Directory: t.TempDir(), Interval: -3 * hour}},
	}
	src := newIndex(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, src, nil, nil, snapshottest.Logger(t)); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

// TestRunPublishes checks a generation file by file: headers, empty deltas,
// gzip siblings, the static tree, and what the Catalog loads.
func TestRunPublishes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newScheduler(t, testConfig(dir), newIndex(t))
	m, err := s.Run(context.Background(), ref.Add(90*time.Minute)) // rounds down to ref
	if err != nil {
		t.Fatal(err)
	}
	if m.Reference != ref.Unix() {
		t.Fatalf("reference %d, want %d", m.Reference, ref.Unix())
	}
	if want := 2 * (len(Scopes(3*hour)) + 2); len(m.Files) != want {
		t.Fatalf("%d files, want %d", len(m.Files), want)
	}
	gen := filepath.Join(dir, CurrentLink)
	// Every file differs from every other, so that a name pointing at the
	// wrong file is noticed below.
	seen := map[string]string{}
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(gen, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		file, err := rgs.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if file.Version != f.Version || file.Timestamp != uint32(ref.Unix()) {
			t.Errorf("%s: version %d timestamp %d", f.Name, file.Version, file.Timestamp)
		}
		if f.Kind == KindEmpty && int(f.Size) != 51+f.Version {
			t.Errorf("%s: empty delta of %d bytes, want %d", f.Name, f.Size, 51+f.Version)
		}
		if other, ok := seen[string(data)]; ok {
			t.Errorf("%s has the same content as %s", f.Name, other)
		}
		seen[string(data)] = f.Name
		gz, err := os.ReadFile(filepath.Join(gen, f.Name+".gz"))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(plain, data) {
			t.Errorf("%s.gz does not decompress to the file (err %v)", f.Name, err)
		}
	}

	cat := NewCatalog(dir, 0, snapshottest.Logger(t))
	if err := cat.Reload(); err != nil {
		t.Fatal(err)
	}
	g := cat.Current()
	if g == nil || g.Manifest.Reference != ref.Unix() {
		t.Fatalf("catalog holds %+v", g)
	}
	// Every static name answers what Pick answers, in both versions.
	r := ref.Unix()
	points := []int64{0, r, r - 3*3600, r - 6*3600, r - 9*3600, r - 2*86400}
	for _, v := range []int{1, 2} {
		root := filepath.Join(gen, StaticDir)
		if v == 2 {
			root = filepath.Join(root, "v2")
		}
		for _, ts := range points {
			name := filepath.Join(root, strconv.FormatInt(ts, 10)+".bin")
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("static v%d %d: %v", v, ts, err)
			}
			if want := g.Pick(v, ts); !bytes.Equal(data, want.Data) {
				t.Errorf("static v%d %d.bin differs from %s", v, ts, want.Info.Name)
			}
			gz, err := os.ReadFile(name + ".gz")
			if err != nil || !bytes.Equal(gz, g.Pick(v, ts).Gzip) {
				t.Errorf("static v%d %d.bin.gz: err %v or differs", v, ts, err)
			}
		}
		// Nothing before the epoch or after R.
		for _, ts := range []int64{r - 2*86400 - 3*3600, r + 3*3600, r - 3600} {
			if _, err := os.Lstat(filepath.Join(root, strconv.FormatInt(ts, 10)+".bin")); err == nil {
				t.Errorf("static v%d has %d.bin", v, ts)
			}
		}
	}
	// 0, 16 grid points from the epoch to R (exclusive), R.
	if m.StaticLinks != 18 {
		t.Errorf("static links = %d, want 18", m.StaticLinks)
	}
}

// TestFailedRunKeepsPreviousGeneration stops the database between two runs:
// the second cannot catch up and fails, and the first generation stays.
func TestFailedRunKeepsPreviousGeneration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cluster := persistencetest.StartCluster(t)
	store := persistencetest.OpenMigrated(t, cluster.NewDatabase())
	snapshottest.Fill(t, store, history)
	src := lookup.NewIndex(store, rgs.ChainMainnet, snapshottest.Logger(t))
	reg := prometheus.NewRegistry()
	s, err := New(testConfig(dir), src, nil, reg, snapshottest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	cluster.Stop()
	if _, err := s.Run(context.Background(), ref.Add(3*hour)); !errors.Is(err, persistence.ErrUnavailable) {
		t.Fatalf("Run = %v, want %v", err, persistence.ErrUnavailable)
	}
	cur, err := s.Current()
	if err != nil || cur.Reference != ref.Unix() {
		t.Fatalf("current = %+v, %v; want the first generation", cur, err)
	}
	if got := metricValue(t, reg, "lnsync_snapshot_runs_total", "error"); got != 1 {
		t.Errorf("error runs = %v, want 1", got)
	}
	if got := metricValue(t, reg, "lnsync_snapshot_last_run_failed", ""); got != 1 {
		t.Errorf("last_run_failed = %v, want 1", got)
	}
	assertNoLeftovers(t, dir)

	cluster.Start()
	if _, err := s.Run(context.Background(), ref.Add(3*hour)); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, reg, "lnsync_snapshot_last_run_failed", ""); got != 0 {
		t.Errorf("last_run_failed = %v after a good run, want 0", got)
	}
}

func TestRunRefusesOlderReference(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newScheduler(t, testConfig(dir), newIndex(t))
	if _, err := s.Run(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), ref.Add(-3*hour)); err == nil {
		t.Fatal("a run older than the published generation succeeded")
	}
	// The same R may be recomputed (a rerun after an import, say).
	if _, err := s.Run(context.Background(), ref); err != nil {
		t.Fatalf("rerun for the same R: %v", err)
	}
	if cur, _ := s.Current(); cur == nil || cur.Reference != ref.Unix() {
		t.Errorf("current = %+v", cur)
	}
}

func TestOldGenerationsRemovedAfterGrace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		grace time.Duration
		want  int // generations on disk after three runs
	}{
		{"long grace keeps all", time.Hour, 3},
		{"short grace keeps only current", time.Nanosecond, 1},
	}
	src := newIndex(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			cfg.Grace = tt.grace
			s := newScheduler(t, cfg, src)
			for i := range 3 {
				if _, err := s.Run(context.Background(), ref.Add(time.Duration(i)*3*hour)); err != nil {
					t.Fatal(err)
				}
			}
			gens, err := listGenerations(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(gens) != tt.want {
				t.Errorf("%d generations left (%v), want %d", len(gens), gens, tt.want)
			}
			cur, _ := currentTarget(dir)
			if gens[len(gens)-1] != cur {
				t.Errorf("newest generation %s is not current %s", gens[len(gens)-1], cur)
			}
		})
	}
}

// TestKillMidRun kills a run with SIGKILL at each publishing step and checks
// that readers see a complete generation, the old one until the link is
// switched, and that the next run cleans up and publishes.
func TestKillMidRun(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dbURL := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, dbURL)
	snapshottest.Fill(t, store, history)
	src := lookup.NewIndex(store, rgs.ChainMainnet, snapshottest.Logger(t))
	tests := []struct {
		step    string
		wantRef int64
	}{
		{"files", ref.Unix()},
		{"static", ref.Unix()},
		{"manifest", ref.Unix()},
		{"renamed", ref.Unix()},
		{"switched", ref.Add(3 * hour).Unix()},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			dir := t.TempDir()
			s := newScheduler(t, testConfig(dir), src)
			if _, err := s.Run(context.Background(), ref); err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashStep+"="+tt.step, envCrashDatabase+"="+dbURL)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = t.Output()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "at "+tt.step {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child said %q (%v), want %q", line, err, "at "+tt.step)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("child exit: %v, want killed", err)
			}

			// A reader sees a complete generation, digests verified.
			cat := NewCatalog(dir, 0, snapshottest.Logger(t))
			if err := cat.Reload(); err != nil {
				t.Fatalf("load after kill: %v", err)
			}
			if got := cat.Current().Manifest.Reference; got != tt.wantRef {
				t.Errorf("after kill at %s, current reference %d, want %d", tt.step, got, tt.wantRef)
			}

			// The next run removes the leftovers and publishes.
			if _, err := s.Run(context.Background(), ref.Add(3*hour)); err != nil {
				t.Fatalf("run after kill: %v", err)
			}
			assertNoLeftovers(t, dir)
			if err := cat.Reload(); err != nil {
				t.Fatal(err)
			}
			if got := cat.Current().Manifest.Reference; got != ref.Add(3*hour).Unix() {
				t.Errorf("after recovery run, reference %d", got)
			}
			gens, _ := listGenerations(dir)
			cur, _ := currentTarget(dir)
			if gens[len(gens)-1] != cur {
				t.Errorf("generation %s newer than current %s left behind", gens[len(gens)-1], cur)
			}
		})
	}
}

func assertNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{dir, filepath.Join(dir, GenerationsDir)} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				t.Errorf("leftover %s in %s", e.Name(), d)
			}
		}
	}
}

// countingSource counts the CatchUp calls it passes on to the Index, to see
// when the scheduler runs.
type countingSource struct {
	*lookup.Index
	runs atomic.Int32
}

func (c *countingSource) CatchUp(ctx context.Context, r time.Time) error {
	c.runs.Add(1)
	return c.Index.CatchUp(ctx, r)
}

func TestSchedulerWaitsForCaughtUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := &countingSource{Index: newIndex(t)}
	var caughtUp atomic.Bool
	cfg := testConfig(dir)
	cfg.Epoch = time.Now().Add(-day)
	s, err := New(cfg, src, caughtUp.Load, nil, snapshottest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	t.Cleanup(s.Stop)
	time.Sleep(100 * time.Millisecond) // ten polls of the signal
	if n := src.runs.Load(); n != 0 {
		t.Fatalf("%d runs before the downloader caught up", n)
	}
	caughtUp.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, err := s.Current()
		if err != nil {
			t.Fatal(err)
		}
		if cur != nil {
			if want := ReferenceFor(time.Now(), Grid).Unix(); cur.Reference != want {
				t.Errorf("first run reference %d, want the current grid point %d", cur.Reference, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no generation 10 s after catching up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	// A restart in the same interval does not recompute.
	s2, err := New(cfg, src, nil, nil, snapshottest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	before := src.runs.Load()
	s2.scheduled(context.Background(), true)
	if src.runs.Load() != before {
		t.Error("restart recomputed a generation that was up to date")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// metricValue returns the value of the named counter or gauge whose first
// label has the given value ("" for an unlabelled metric), or -1.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// failingSource fails its first fails catch-ups, then works.
type failingSource struct {
	*lookup.Index
	fails    int32
	calls    atomic.Int32
	observed atomic.Pointer[Failure] // LastFailure when the last failing attempt was retried
	s        *Scheduler
}

func (f *failingSource) CatchUp(ctx context.Context, r time.Time) error {
	n := f.calls.Add(1)
	if n == f.fails+1 && f.s != nil {
		f.observed.Store(f.s.LastFailure())
	}
	if n <= f.fails {
		return errors.New("injected failure")
	}
	return f.Index.CatchUp(ctx, r)
}

// A scheduled run that fails is tried again with backoff, not only at the
// next grid point; LastFailure says why meanwhile, the log does not claim a
// generation is published when none is, and a success clears the failure.
func TestScheduledRunRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := &failingSource{Index: newIndex(t), fails: 3}
	cfg := testConfig(dir)
	cfg.Epoch = time.Now().Add(-day)
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 40*time.Millisecond
	var logs syncLog
	s, err := New(cfg, src, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	src.s = s
	start := time.Now()
	s.Start(context.Background())
	t.Cleanup(s.Stop)
	for {
		cur, err := s.Current()
		if err != nil {
			t.Fatal(err)
		}
		if cur != nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no generation 10 s after three failed runs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The scheduler records the success right after publishing.
	for s.LastFailure() != nil || !strings.Contains(logs.String(), "snapshot run succeeded after retrying") {
		if time.Since(start) > 10*time.Second {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := src.calls.Load(); n != 4 {
		t.Errorf("%d attempts, want 4 (three failures, one success)", n)
	}
	f := src.observed.Load()
	if f == nil || f.Err == nil || !strings.Contains(f.Err.Error(), "injected failure") || f.NextTry.IsZero() {
		t.Errorf("LastFailure during the retries = %+v; want the injected failure and a next try", f)
	}
	if s.LastFailure() != nil {
		t.Errorf("LastFailure after a good run = %+v, want nil", s.LastFailure())
	}
	out := logs.String()
	if !strings.Contains(out, "published=\"no generation is published yet\"") || strings.Contains(out, "stays published") {
		t.Errorf("the log must say that no generation is published yet:\n%s", out)
	}
	if !strings.Contains(out, "snapshot run succeeded after retrying") {
		t.Errorf("the recovery is not logged:\n%s", out)
	}
}

// syncLog is a log buffer safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var updateGolden = flag.Bool("update", false, "rewrite testdata/generation.sha256")

// TestGenerationBytesAreStable checks the plain RGS bytes of a generation of
// the test history against the sha256 sums recorded in
// testdata/generation.sha256: how files are compressed, deduplicated or
// laid out may change, what clients decode may not. `go test ./snapshot
// -run TestGenerationBytesAreStable -update` rewrites the record.
func TestGenerationBytesAreStable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newScheduler(t, testConfig(dir), newIndex(t))
	m, err := s.Run(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, CurrentLink, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&got, "%x  %s\n", sum, f.Name)
		if hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: the manifest's sum differs from the file's", f.Name)
		}
	}
	golden := filepath.Join("testdata", "generation.sha256")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("generation bytes changed:\ngot\n%swant\n%s", got.String(), want)
	}
}

// Files with the same bytes (in a quiet network the widest scopes and the
// full snapshot coincide) are compressed once and written once: the others
// are hard links to the first, regular files for static hosting, with the
// same sums in the manifest.
func TestIdenticalFilesWrittenOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newScheduler(t, testConfig(dir), newIndex(t))
	// Forty days on, every channel of the history is stale: every delta of
	// a version has the same bytes.
	m, err := s.Run(context.Background(), ref.Add(40*day))
	if err != nil {
		t.Fatal(err)
	}
	gen := filepath.Join(dir, CurrentLink)
	first := map[string]string{} // sha256 → first file with it
	links := 0
	for _, f := range m.Files {
		for _, ext := range []string{"", ".gz"} {
			fi, err := os.Lstat(filepath.Join(gen, f.Name+ext))
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%s: %v, mode %v; want a regular file", f.Name+ext, err, fi.Mode())
			}
		}
		o, ok := first[f.SHA256]
		if !ok {
			first[f.SHA256] = f.Name
			continue
		}
		links++
		for _, ext := range []string{"", ".gz"} {
			a, _ := os.Stat(filepath.Join(gen, o+ext))
			b, _ := os.Stat(filepath.Join(gen, f.Name+ext))
			if !os.SameFile(a, b) {
				t.Errorf("%s has the bytes of %s but is another file", f.Name+ext, o+ext)
			}
		}
		var of FileInfo
		for _, g := range m.Files {
			if g.Name == o {
				of = g
			}
		}
		if of.GzipSHA256 != f.GzipSHA256 || of.GzipSize != f.GzipSize {
			t.Errorf("%s and %s: same bytes, different gzip sums in the manifest", f.Name, o)
		}
	}
	if links == 0 || len(first) != 2 {
		t.Errorf("%d distinct files and %d links; want 2 distinct (one per version) and the rest links", len(first), links)
	}
}
