package harness

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/snapshot"
)

// SnapshotRun is one `lnsync snapshot` process: a cold index load from the
// database and a full generation (every scope, full and empty, v1 and v2).
type SnapshotRun struct {
	Reference int64 `json:"reference"`
	// WallSeconds is the whole process; RunSeconds the generation itself,
	// as its manifest states (the index is loaded before it starts).
	WallSeconds  float64             `json:"wall_seconds"`
	RunSeconds   float64             `json:"run_seconds"`
	PeakRSSBytes int64               `json:"peak_rss_bytes"`
	Files        []snapshot.FileInfo `json:"files"`
}

// RunSnapshot runs `lnsync snapshot -at ref` with the given configuration
// file and reads the manifest it published in dir.
func RunSnapshot(ctx context.Context, lnsyncBin, configPath, dir string, ref time.Time) (SnapshotRun, error) {
	var run SnapshotRun
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, lnsyncBin, "snapshot", "-config", configPath, "-at", strconv.FormatInt(ref.Unix(), 10))
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return run, fmt.Errorf("lnsync snapshot: %w\n%s", err, out.Bytes())
	}
	run.WallSeconds = time.Since(start).Seconds()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		run.PeakRSSBytes = ru.Maxrss * 1024 // kilobytes on Linux
	}
	m, err := snapshot.ReadManifest(filepath.Join(dir, "current"))
	if err != nil {
		return run, err
	}
	run.Reference, run.RunSeconds, run.Files = m.Reference, m.DurationSeconds, m.Files
	return run, nil
}

// DeltaLatency is the computation time of exact deltas for one window and
// format version, from the in-memory index (what /dynamic/{ts} does on a
// cache miss), with the size of the answer.
type DeltaLatency struct {
	Window    string  `json:"window"`
	Version   int     `json:"version"`
	Samples   int     `json:"samples"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	Bytes     int     `json:"bytes"`
	GzipBytes int     `json:"gzip_bytes"`
	// Announcements and Updates count what the delta holds.
	Announcements int `json:"announcements"`
	Updates       int `json:"updates"`
}

// MeasureDeltas computes the delta from ref-window to ref in each format
// version, repeatedly: at least minSamples times, then until maxSamples or
// budget per window and version is spent.
func MeasureDeltas(ctx context.Context, x *lookup.Index, ref time.Time, windows []time.Duration,
	minSamples, maxSamples int, budget time.Duration) ([]DeltaLatency, error) {
	var out []DeltaLatency
	for _, win := range windows {
		for _, version := range []int{1, 2} {
			l := DeltaLatency{Window: formatWindow(win), Version: version}
			var times []float64
			start := time.Now()
			for len(times) < minSamples || (len(times) < maxSamples && time.Since(start) < budget) {
				t0 := time.Now()
				b, st, err := x.Encode(ctx, ref.Add(-win), ref, version)
				if err != nil {
					return nil, err
				}
				times = append(times, float64(time.Since(t0).Microseconds())/1000)
				if l.Bytes == 0 {
					l.Bytes, l.GzipBytes = len(b), gzipSize(b)
					l.Announcements, l.Updates = st.Announcements, st.Full+st.Incremental+st.Reminders
				}
			}
			l.Samples = len(times)
			l.P50Ms, l.P99Ms = percentile(times, 0.50), percentile(times, 0.99)
			out = append(out, l)
		}
	}
	return out, nil
}

// gzipSize is the size of b compressed as snapshot files are.
func gzipSize(b []byte) int {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Len()
}

// percentile returns the nearest-rank q-quantile of xs.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// formatWindow names a window as the table does: hours up to a day, then
// days.
func formatWindow(d time.Duration) string {
	if d > 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return fmt.Sprintf("%dh", d/time.Hour)
}
