package harness

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/lnsync/lnsync/snapshot"
)

// Reference sizes of the rapid-gossip-sync-server's snapshots, from its
// crate README (August 2024 mainnet).
var referenceSizes = map[string][2]int{
	"full": {3_300_000, 1_500_000},
	"7d":   {1_700_000, 566_000},
	"24h":  {210_000, 99_000},
}

// Results is everything `make bench` measured, as written to results.json.
type Results struct {
	Machine struct {
		Cores int    `json:"cores"`
		CPU   string `json:"cpu"`
		Go    string `json:"go"`
	} `json:"machine"`
	Dataset struct {
		Dir           string `json:"dir"`
		Start         int64  `json:"start"`
		Days          int    `json:"days"`
		Channels      int    `json:"channels"`
		Nodes         int    `json:"nodes"`
		Messages      int64  `json:"messages"`
		Generated     bool   `json:"generated_this_run"`
		GenerateWallS int64  `json:"generate_seconds,omitempty"`
	} `json:"dataset"`
	Load             LoadStats      `json:"load"`
	LoadRowsPerSec   float64        `json:"load_rows_per_second"`
	Ingest           IngestResult   `json:"ingest"`
	VerifyPerSecond  float64        `json:"raw_signatures_per_second"`
	Snapshot         SnapshotRun    `json:"snapshot"`
	IndexLoadSeconds float64        `json:"index_load_seconds"`
	Deltas           []DeltaLatency `json:"deltas"`
	HTTP             []HTTPRun      `json:"http"`
	TotalSeconds     float64        `json:"total_seconds"`
}

// file returns the manifest entry of a kind ("full") or scope width.
func (r *Results) file(version int, kind string, scope int64) *snapshot.FileInfo {
	for i := range r.Snapshot.Files {
		f := &r.Snapshot.Files[i]
		if f.Version == version && f.Kind == kind && f.Scope == scope {
			return f
		}
	}
	return nil
}

func (r *Results) delta(window string, version int) *DeltaLatency {
	for i := range r.Deltas {
		if r.Deltas[i].Window == window && r.Deltas[i].Version == version {
			return &r.Deltas[i]
		}
	}
	return nil
}

// medianRun returns, field by field, the median over the rounds of a
// server's runs at a connection count.
func (r *Results) medianRun(server string, conns int) (HTTPRun, bool) {
	var rps, p50, p99, cpu []float64
	for _, h := range r.HTTP {
		if h.Server == server && h.Connections == conns {
			rps, p50, p99 = append(rps, h.PerSecond), append(p50, h.P50Ms), append(p99, h.P99Ms)
			cpu = append(cpu, h.CPUMicros)
		}
	}
	if len(rps) == 0 {
		return HTTPRun{}, false
	}
	return HTTPRun{Server: server, Connections: conns, PerSecond: percentile(rps, 0.5), P50Ms: percentile(p50, 0.5),
		P99Ms: percentile(p99, 0.5), CPUMicros: percentile(cpu, 0.5)}, true
}

// sizeRow is one row of the size comparison: raw and gzip bytes by format
// version (index 1 and 2), and what the v1 answer holds.
type sizeRow struct {
	raw, gz  [3]int64
	ann, upd int
}

// fileSizes fills a sizeRow from the generation's files of a kind and scope.
func (r *Results) fileSizes(kind string, scope int64) sizeRow {
	var s sizeRow
	for v := 1; v <= 2; v++ {
		if f := r.file(v, kind, scope); f != nil {
			s.raw[v], s.gz[v] = f.Size, f.GzipSize
			if v == 1 {
				s.ann, s.upd = f.Announcements, f.Updates
			}
		}
	}
	return s
}

// deltaSizes fills a sizeRow from the measured exact deltas of a window.
func (r *Results) deltaSizes(window string) sizeRow {
	var s sizeRow
	for v := 1; v <= 2; v++ {
		if d := r.delta(window, v); d != nil {
			s.raw[v], s.gz[v] = int64(d.Bytes), int64(d.GzipBytes)
			if v == 1 {
				s.ann, s.upd = d.Announcements, d.Updates
			}
		}
	}
	return s
}

// WriteTable prints the one table of `make bench`: each figure with what it
// is compared with.
func (r *Results) WriteTable(w io.Writer) {
	row := func(what, value, against string) {
		fmt.Fprintf(w, "| %s | %s | %s |\n", what, value, against)
	}
	kb := func(n int64) string { return fmt.Sprintf("%.0f kB", float64(n)/1000) }
	mb := func(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }
	size := func(n int64) string {
		if n >= 1_000_000 {
			return mb(n)
		}
		return kb(n)
	}
	fmt.Fprintf(w, "lnsync benchmark: %d channels, %d nodes, %d days of history (%d messages); %d cores, %s\n\n",
		r.Dataset.Channels, r.Dataset.Nodes, r.Dataset.Days, r.Dataset.Messages, r.Machine.Cores, r.Machine.CPU)
	fmt.Fprintln(w, "| figure | lnsync | compared with |")
	fmt.Fprintln(w, "|---|---|---|")
	in := r.Ingest
	row("ingest through the load peer (validated + stored msgs/s)",
		fmt.Sprintf("%.0f msgs/s (%.0f sigs/s; %d msgs in %.1f s)", in.PerSecond, in.SignaturesPerSecond, in.Accepted, in.Seconds),
		fmt.Sprintf("raw ECDSA verification on all cores: %.0f sigs/s (ingest reaches %.0f%%); mainnet produces ≈5 msgs/s",
			r.VerifyPerSecond, 100*in.SignaturesPerSecond/r.VerifyPerSecond))
	importMinutes := 0.0
	if in.PerSecond > 0 {
		importMinutes = float64(r.Load.Messages) / in.PerSecond / 60
	}
	row("history load (trusted bulk path, 1% of signatures re-checked)",
		fmt.Sprintf("%d msgs in %.0f s (%.0f rows/s)", r.Load.Messages, r.Load.Seconds, r.LoadRowsPerSec),
		fmt.Sprintf("`lnsync import` checks every signature: at the ingest rate above, %.0f min", importMinutes))
	s := r.Snapshot
	row("full snapshot run (all scopes, v1+v2), fresh `lnsync snapshot` process",
		fmt.Sprintf("%.1f s (process %.1f s; the index alone loads in %.1f s); peak RSS %.2f GB",
			s.RunSeconds, s.WallSeconds, r.IndexLoadSeconds, float64(s.PeakRSSBytes)/1e9),
		fmt.Sprintf("the 3 h interval it must fit in: %.1f%% of it; reference server: no published timing", 100*s.WallSeconds/10800))
	served := "see the HTTP rows"
	if m, ok := r.medianRun("lnsync", 64); ok {
		served = fmt.Sprintf("p50 %.1f ms at 64 connections", m.P50Ms)
	}
	for _, win := range []string{"3h", "24h", "7d"} {
		d1, d2 := r.delta(win, 1), r.delta(win, 2)
		if d1 == nil || d2 == nil {
			continue
		}
		row("dynamic delta "+win+" (compute + encode, p50 / p99)",
			fmt.Sprintf("v1 %.0f / %.0f ms; v2 %.0f / %.0f ms (n=%d)", d1.P50Ms, d1.P99Ms, d2.P50Ms, d2.P99Ms, min(d1.Samples, d2.Samples)),
			"a precomputed file of /snapshot/: "+served)
	}
	for _, sz := range []struct {
		label, key string
		sizeRow
	}{
		{"full", "full", r.fileSizes("full", 0)},
		{"24 h", "24h", r.fileSizes("scope", 86400)},
		{"7 d (exact delta)", "7d", r.deltaSizes("7d")},
	} {
		ref := referenceSizes[sz.key]
		row("snapshot size "+sz.label+" (raw / gzip)",
			fmt.Sprintf("v1 %s / %s; v2 %s / %s (%d announcements, %d updates)",
				size(sz.raw[1]), size(sz.gz[1]), size(sz.raw[2]), size(sz.gz[2]), sz.ann, sz.upd),
			fmt.Sprintf("reference server, Aug 2024 mainnet: %s / %s (v1)", size(int64(ref[0])), size(int64(ref[1]))))
	}
	conns := []int{}
	for _, h := range r.HTTP {
		if !slices.Contains(conns, h.Connections) {
			conns = append(conns, h.Connections)
		}
	}
	for _, c := range conns {
		l, ok1 := r.medianRun("lnsync", c)
		n, ok2 := r.medianRun("nginx", c)
		if !ok1 || !ok2 {
			continue
		}
		row(fmt.Sprintf("HTTP snapshot mix, %d connections (req/s, p99, CPU/req)", c),
			fmt.Sprintf("%.0f req/s, p99 %.1f ms, %.0f µs", l.PerSecond, l.P99Ms, l.CPUMicros),
			fmt.Sprintf("nginx on the same files: %.0f req/s, p99 %.1f ms, %.0f µs (lnsync/nginx %.2f in req/s)",
				n.PerSecond, n.P99Ms, n.CPUMicros, l.PerSecond/n.PerSecond))
	}
	fmt.Fprintf(w, "\ntotal %.0f s; details in results.json\n", r.TotalSeconds)
}

// Table returns WriteTable's output.
func (r *Results) Table() string {
	var b strings.Builder
	r.WriteTable(&b)
	return b.String()
}
