package harness

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/snapshot"
)

const wrkOutput = `Running 8s test @ http://127.0.0.1:41234
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.20ms  31.02ms   88.11%
    Req/Sec    15.61k     1.02k   18.20k    71.25%
  Latency Distribution
     50%    1.85ms
     75%    2.51ms
     90%    3.40ms
     99%  950.00us
  248512 requests in 8.00s, 9.87GB read
Requests/sec:  31058.93
Transfer/sec:      1.23GB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk([]byte(wrkOutput))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 248512 || r.PerSecond != 31058.93 || r.P50Ms != 1.85 || r.P99Ms != 0.95 {
		t.Fatalf("parsed %+v", r)
	}
	for name, out := range map[string]string{
		"non-2xx":       strings.Replace(wrkOutput, "Requests/sec:", "  Non-2xx or 3xx responses: 12\nRequests/sec:", 1),
		"socket errors": strings.Replace(wrkOutput, "Requests/sec:", "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec:", 1),
		"truncated":     wrkOutput[:200],
		"bad unit":      strings.Replace(wrkOutput, "1.85ms", "1.85h", 1),
	} {
		if _, err := parseWrk([]byte(out)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMix(t *testing.T) {
	const ref = 1_728_000_000
	mix := Mix(ref)
	if len(mix) != 2*24 {
		t.Fatalf("%d paths, want 48", len(mix))
	}
	count := map[string]int{}
	for _, p := range mix {
		count[p]++
	}
	if count["/snapshot/1728000000.bin"] != 6 || count["/snapshot/v2/1728000000.bin"] != 6 || count["/snapshot/0.bin"] != 1 ||
		count["/snapshot/v2/1727395200.bin"] != 1 {
		t.Fatalf("mix weights: %v", count)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, tt := range []struct{ q, want float64 }{{0.5, 3}, {0.99, 5}, {0, 1}, {0.2, 1}, {0.21, 2}} {
		if got := percentile(xs, tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

// TestMeasureDeltas loads the history and checks that the measured deltas
// are the ones the index encodes, with every sample counted.
func TestMeasureDeltas(t *testing.T) {
	ctx := context.Background()
	store := persistencetest.NewStore(t)
	if _, _, err := LoadTrusted(ctx, newWriter(t, store), history.files, 0); err != nil {
		t.Fatal(err)
	}
	ref := time.Unix(history.man.Start+int64(history.man.Days)*86400, 0)
	x := lookup.NewIndex(store, *mainnet(), persistencetest.Logger(t))
	got, err := MeasureDeltas(ctx, x, ref, []time.Duration{3 * time.Hour, 48 * time.Hour}, 3, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d results, want 2 windows × 2 versions", len(got))
	}
	for _, d := range got {
		win := 3 * time.Hour
		if d.Window == "2d" {
			win = 48 * time.Hour
		} else if d.Window != "3h" {
			t.Fatalf("window named %q", d.Window)
		}
		b, st, err := x.Encode(ctx, ref.Add(-win), ref, d.Version)
		if err != nil {
			t.Fatal(err)
		}
		if d.Bytes != len(b) || d.GzipBytes != gzipSize(b) || d.Updates != st.Full+st.Incremental+st.Reminders {
			t.Errorf("%s v%d: measured %d bytes (%d gzip, %d updates), the index encodes %d", d.Window, d.Version,
				d.Bytes, d.GzipBytes, d.Updates, len(b))
		}
		if d.Samples < 3 || d.Samples > 4 || d.P50Ms <= 0 || d.P99Ms < d.P50Ms {
			t.Errorf("%s v%d: %d samples, p50 %v, p99 %v", d.Window, d.Version, d.Samples, d.P50Ms, d.P99Ms)
		}
	}
}

// TestTableSaysWhatEachFigureIsComparedWith fills every section and checks
// that each row of the table names its comparison.
func TestTableSaysWhatEachFigureIsComparedWith(t *testing.T) {
	var r Results
	r.Machine.Cores = 2
	r.Ingest = IngestResult{Accepted: 1000, Seconds: 1, PerSecond: 1000, SignaturesPerSecond: 1500}
	r.VerifyPerSecond = 3000
	r.Load = LoadStats{Messages: 10, Seconds: 1}
	r.Snapshot = SnapshotRun{RunSeconds: 20, WallSeconds: 40, PeakRSSBytes: 1 << 30, Files: []snapshot.FileInfo{
		{Version: 1, Kind: "full", Size: 4_000_000, GzipSize: 2_000_000},
		{Version: 2, Kind: "full", Size: 5_000_000, GzipSize: 2_500_000},
		{Version: 1, Kind: "scope", Scope: 86400, Size: 700_000, GzipSize: 300_000},
		{Version: 2, Kind: "scope", Scope: 86400, Size: 900_000, GzipSize: 400_000},
	}}
	for _, w := range []string{"3h", "24h", "7d"} {
		r.Deltas = append(r.Deltas, DeltaLatency{Window: w, Version: 1, Samples: 5, P50Ms: 10, P99Ms: 20, Bytes: 100},
			DeltaLatency{Window: w, Version: 2, Samples: 5, P50Ms: 11, P99Ms: 21, Bytes: 120})
	}
	r.HTTP = []HTTPRun{{Server: "lnsync", Connections: 64, PerSecond: 20000, P50Ms: 1.5, P99Ms: 5, CPUMicros: 40},
		{Server: "nginx", Connections: 64, PerSecond: 40000, P99Ms: 3, CPUMicros: 20}}
	table := r.Table()
	for _, want := range []string{
		"raw ECDSA verification on all cores: 3000 sigs/s (ingest reaches 50%)",
		"peak RSS 1.07 GB",
		"dynamic delta 3h", "dynamic delta 24h", "dynamic delta 7d", "a precomputed file of /snapshot/: p50 1.5 ms",
		"v1 4.00 MB / 2.00 MB; v2 5.00 MB / 2.50 MB (0 announcements, 0 updates) | reference server, Aug 2024 mainnet: 3.30 MB / 1.50 MB",
		"v1 700 kB / 300 kB; v2 900 kB / 400 kB (0 announcements, 0 updates) | reference server, Aug 2024 mainnet: 210 kB / 99 kB",
		"nginx on the same files: 40000 req/s, p99 3.0 ms, 20 µs (lnsync/nginx 0.50 in req/s)",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| figure") {
			if cells := strings.Split(line, " | "); len(cells) != 3 || strings.TrimSpace(strings.TrimSuffix(cells[2], "|")) == "" {
				t.Errorf("row without a comparison: %s", line)
			}
		}
	}
}
