package reconcile

import (
	"cmp"
	"encoding/csv"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// UpdateCap is the per-day update budget discussed for gossip v1.5/v2 (one
// per block); the frequency metrics report the share above it.
const UpdateCap = 144

// ReportOptions tunes Report.
type ReportOptions struct {
	// MinPeers is the least receipts a message needs to enter the convergence
	// statistics. Zero means MinShare of the distinct peers of the window.
	MinPeers int
	// MinShare is used when MinPeers is zero. Zero means 0.5, gossip_observer
	// v1's threshold.
	MinShare float64
}

// Report is the propagation metrics of a window (observer notes §3.3). Every
// figure is exact from the hourly aggregates, and equal to the raw path's,
// except two: the peer lag quantiles come from LagHistogram (within 4.4% of
// the exact value, 0 below 1 ms) in both paths, so the paths still agree; and
// a peer without any recorded session is taken to be connected throughout
// each window it delivered in, which for aggregates means each hour, so its
// eligible count and the connected counts can differ between the paths.
// Live peers always have sessions.
type Report struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Source string    `json:"source"` // "raw" or "aggregates"
	Hours  float64   `json:"hours"`
	// Peers counts the distinct peers that delivered a message of the window.
	Peers           int                `json:"peers"`
	Types           []TypeStats        `json:"types"` // channel_announcement, node_announcement, channel_update, all
	Convergence     Convergence        `json:"convergence"`
	Coverage        []CoveragePoint    `json:"coverage"`
	PeersPerMessage PeersPerMessage    `json:"peers_per_message"`
	PeerStats       []PeerReport       `json:"peer_stats"`
	Frequency       Frequency          `json:"update_frequency"`
	TimestampLag    []TimestampLagStat `json:"timestamp_lag"`
}

// TypeStats are the unique rate, bytes and redundancy of one message type.
type TypeStats struct {
	Type           string  `json:"type"`
	Unique         int64   `json:"unique"`
	UniquePerMin   float64 `json:"unique_per_min"`
	UniqueBytes    int64   `json:"unique_bytes"`
	Receipts       int64   `json:"receipts"`
	Redundancy     float64 `json:"redundancy"`      // receipts / unique
	DuplicateBytes int64   `json:"duplicate_bytes"` // Σ size·(receipts−1)
}

// Convergence is the distribution across messages of D_q(h).
type Convergence struct {
	MinPeers  int              `json:"min_peers"`
	Messages  int              `json:"messages"`
	AvgPeers  float64          `json:"avg_peers"`
	Quantiles []ConvergenceRow `json:"quantiles"`
}

// ConvergenceRow is D_q across messages, in seconds.
type ConvergenceRow struct {
	Q    float64 `json:"q"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
}

// CoveragePoint is C_h(t) across messages with at least one connected peer.
type CoveragePoint struct {
	Seconds float64 `json:"t_seconds"`
	Mean    float64 `json:"mean"`
	P50     float64 `json:"p50"`
}

// PeersPerMessage is the distribution of receipts(h).
type PeersPerMessage struct {
	Histogram []PeersBin `json:"histogram"` // one row per observed receipt count
	// Cumulative is the share of messages delivered by at most MaxPeers peers.
	Cumulative []PeersShare `json:"cumulative"`
	Median     float64      `json:"median"`
	P75        float64      `json:"p75"`
	P90        float64      `json:"p90"`
	Max        int          `json:"max"`
}

// PeersBin counts messages delivered by exactly Peers peers.
type PeersBin struct {
	Peers    int   `json:"peers"`
	Messages int64 `json:"messages"`
}

// PeersShare is the share of messages delivered by at most MaxPeers peers.
type PeersShare struct {
	MaxPeers int     `json:"max_peers"`
	Share    float64 `json:"share"`
}

// PeerReport is one peer's relay ratio and lag.
type PeerReport struct {
	Peer                int32   `json:"peer"`
	Delivered           int64   `json:"delivered"`
	Eligible            int64   `json:"eligible"`
	RelayRatio          float64 `json:"relay_ratio"` // relayed ÷ eligible
	LagP50              float64 `json:"lag_p50"`     // seconds, bucketed
	LagP95              float64 `json:"lag_p95"`
	FirstResponderShare float64 `json:"first_responder_share"` // of the window's messages
	Bytes               int64   `json:"bytes"`
}

// Frequency is the update frequency per channel and node.
type Frequency struct {
	Days float64 `json:"days"`
	// SCIDs counts channels with a channel_update in the window; Updates the
	// distinct (scid, direction, timestamp) among them.
	SCIDs                   int     `json:"scids"`
	Updates                 int64   `json:"updates"`
	MeanPerSCIDPerDay       float64 `json:"mean_per_scid_per_day"`
	MaxPerSCIDPerDay        float64 `json:"max_per_scid_per_day"`
	SCIDsAboveCapShare      float64 `json:"scids_above_cap_share"`   // above UpdateCap per day
	UpdatesAboveCapShare    float64 `json:"updates_above_cap_share"` // their share of updates
	Nodes                   int     `json:"nodes"`                   // nodes with a node_announcement
	Announcements           int64   `json:"announcements"`           // distinct (node, timestamp)
	MeanPerNodePerDay       float64 `json:"mean_per_node_per_day"`
	MaxPerNodePerDay        float64 `json:"max_per_node_per_day"`
	NodesAboveCapShare      float64 `json:"nodes_above_cap_share"`
	AnnouncementsAboveCap   float64 `json:"announcements_above_cap"`    // share of announcements
	KeepAlives              int64   `json:"keep_alives"`                // channel_updates equal to the previous version but for the timestamp
	KeepAliveShare          float64 `json:"keep_alive_share"`           // of channel_updates with a known gossip row
	UpdatesWithoutGossipRow int64   `json:"updates_without_gossip_row"` // receipts whose message row is unknown
}

// TimestampLagStat is f(h) − τ(h) in seconds for one type.
type TimestampLagStat struct {
	Type     string  `json:"type"`
	Messages int64   `json:"messages"`
	Mean     float64 `json:"mean"`
	P50      float64 `json:"p50"`
	P95      float64 `json:"p95"`
}

// TypeName returns the BOLT 7 name of a gossip type.
func TypeName(t uint16) string {
	switch t {
	case TypeChannelAnnouncement:
		return "channel_announcement"
	case TypeNodeAnnouncement:
		return "node_announcement"
	case TypeChannelUpdate:
		return "channel_update"
	}
	return strconv.Itoa(int(t))
}

var reportTypes = []uint16{TypeChannelAnnouncement, TypeNodeAnnouncement, TypeChannelUpdate}

// BuildReport computes the metrics of a summary. Empty summaries give zero
// counts and NaN-free output (undefined figures are 0).
func BuildReport(s *Summary, source string, opt ReportOptions) *Report {
	dur := float64(s.To-s.From) / 1e6
	r := &Report{From: time.UnixMicro(s.From).UTC(), To: time.UnixMicro(s.To).UTC(), Source: source, Hours: dur / 3600}
	for _, p := range s.Peers {
		if p.Delivered > 0 {
			r.Peers++
		}
	}
	// Types.
	all := TypeStats{Type: "all"}
	byType := make(map[uint16]*TypeStats)
	for _, t := range reportTypes {
		byType[t] = &TypeStats{Type: TypeName(t)}
	}
	for i := range s.Messages {
		m := &s.Messages[i]
		ts := byType[m.Type]
		if ts == nil {
			ts = &TypeStats{Type: TypeName(m.Type)}
			byType[m.Type] = ts
		}
		for _, x := range []*TypeStats{ts, &all} {
			x.Unique++
			x.UniqueBytes += int64(m.Size)
			x.Receipts += int64(m.Receipts)
			x.DuplicateBytes += int64(m.Size) * int64(m.Receipts-1)
		}
	}
	keys := make([]uint16, 0, len(byType))
	for t := range byType {
		keys = append(keys, t)
	}
	slices.Sort(keys)
	for _, t := range keys {
		r.Types = append(r.Types, byType[t].finish(dur))
	}
	r.Types = append(r.Types, all.finish(dur))

	r.Convergence = convergence(s, r.Peers, opt)
	r.Coverage = coverage(s)
	r.PeersPerMessage = peersPerMessage(s)
	for _, p := range s.Peers {
		pr := PeerReport{Peer: p.Peer, Delivered: p.Delivered, Eligible: p.Eligible, Bytes: p.Bytes,
			LagP50: nan0(p.Lag.Quantile(0.5)), LagP95: nan0(p.Lag.Quantile(0.95))}
		pr.RelayRatio = ratio(float64(p.Relayed), float64(p.Eligible))
		pr.FirstResponderShare = ratio(float64(p.FirstResponder), float64(len(s.Messages)))
		r.PeerStats = append(r.PeerStats, pr)
	}
	r.Frequency = frequency(s, dur/86400)
	r.TimestampLag = timestampLag(s)
	return r
}

func (t TypeStats) finish(dur float64) TypeStats {
	t.UniquePerMin = ratio(float64(t.Unique), dur/60)
	t.Redundancy = ratio(float64(t.Receipts), float64(t.Unique))
	return t
}

func convergence(s *Summary, peers int, opt ReportOptions) Convergence {
	minPeers := opt.MinPeers
	if minPeers <= 0 {
		share := opt.MinShare
		if share <= 0 {
			share = 0.5
		}
		minPeers = max(1, int(math.Ceil(share*float64(peers))))
	}
	c := Convergence{MinPeers: minPeers}
	var cols [len(ConvergenceQuantiles)][]float64
	var sumPeers float64
	for i := range s.Messages {
		m := &s.Messages[i]
		if int(m.Receipts) < minPeers {
			continue
		}
		c.Messages++
		sumPeers += float64(m.Receipts)
		for j := range cols {
			cols[j] = append(cols[j], float64(m.Delay[j]))
		}
	}
	c.AvgPeers = ratio(sumPeers, float64(c.Messages))
	for j, q := range ConvergenceQuantiles {
		v := cols[j]
		slices.Sort(v)
		c.Quantiles = append(c.Quantiles, ConvergenceRow{Q: q, Mean: mean(v), P50: nan0(quantileCont(v, 0.5)), P95: nan0(quantileCont(v, 0.95))})
	}
	return c
}

func coverage(s *Summary) []CoveragePoint {
	var out []CoveragePoint
	vals := make([]float64, 0, len(s.Messages))
	for j, t := range CoverageTimes {
		vals = vals[:0]
		for i := range s.Messages {
			m := &s.Messages[i]
			if m.Connected > 0 {
				vals = append(vals, float64(m.Covered[j])/float64(m.Connected))
			}
		}
		slices.Sort(vals)
		out = append(out, CoveragePoint{Seconds: t.Seconds(), Mean: mean(vals), P50: nan0(quantileCont(vals, 0.5))})
	}
	return out
}

func peersPerMessage(s *Summary) PeersPerMessage {
	var p PeersPerMessage
	counts := make(map[int]int64)
	vals := make([]float64, 0, len(s.Messages))
	for i := range s.Messages {
		n := int(s.Messages[i].Receipts)
		counts[n]++
		vals = append(vals, float64(n))
		p.Max = max(p.Max, n)
	}
	for n, c := range counts {
		p.Histogram = append(p.Histogram, PeersBin{Peers: n, Messages: c})
	}
	slices.SortFunc(p.Histogram, func(a, b PeersBin) int { return cmp.Compare(a.Peers, b.Peers) })
	total := float64(len(s.Messages))
	for _, limit := range []int{1, 2, 5, 10, 50, 100, 500} {
		var c int64
		for _, b := range p.Histogram {
			if b.Peers <= limit {
				c += b.Messages
			}
		}
		p.Cumulative = append(p.Cumulative, PeersShare{MaxPeers: limit, Share: ratio(float64(c), total)})
	}
	slices.Sort(vals)
	p.Median = nan0(quantileCont(vals, 0.5))
	p.P75 = nan0(quantileCont(vals, 0.75))
	p.P90 = nan0(quantileCont(vals, 0.90))
	return p
}

type scidDir struct {
	scid int64
	dir  int16
	ts   int64
}

type nodeTS struct {
	node string
	ts   int64
}

func frequency(s *Summary, days float64) Frequency {
	f := Frequency{Days: days}
	updates := make(map[scidDir]bool)
	anns := make(map[nodeTS]bool)
	var cuKnown int64
	for i := range s.Messages {
		m := &s.Messages[i]
		g := m.Gossip
		switch m.Type {
		case TypeChannelUpdate:
			if g == nil {
				f.UpdatesWithoutGossipRow++
				continue
			}
			cuKnown++
			if g.KeepAlive {
				f.KeepAlives++
			}
			updates[scidDir{g.SCID, g.Direction, g.Timestamp}] = true
		case TypeNodeAnnouncement:
			if g != nil {
				anns[nodeTS{g.NodeID, g.Timestamp}] = true
			}
		}
	}
	f.KeepAliveShare = ratio(float64(f.KeepAlives), float64(cuKnown))
	perSCID := make(map[int64]int64)
	for k := range updates {
		perSCID[k.scid]++
	}
	perNode := make(map[string]int64)
	for k := range anns {
		perNode[k.node]++
	}
	f.SCIDs, f.Updates, f.MeanPerSCIDPerDay, f.MaxPerSCIDPerDay, f.SCIDsAboveCapShare, f.UpdatesAboveCapShare = capStats(perSCID, days)
	f.Nodes, f.Announcements, f.MeanPerNodePerDay, f.MaxPerNodePerDay, f.NodesAboveCapShare, f.AnnouncementsAboveCap = capStats(perNode, days)
	return f
}

func capStats[K comparable](counts map[K]int64, days float64) (keys int, total int64, meanPerDay, maxPerDay, keysAbove, totalAbove float64) {
	if days <= 0 {
		return
	}
	var above, aboveTotal int64
	var mx int64
	for _, c := range counts {
		total += c
		mx = max(mx, c)
		if float64(c)/days > UpdateCap {
			above++
			aboveTotal += c
		}
	}
	keys = len(counts)
	return keys, total, ratio(float64(total), float64(keys)) / days, float64(mx) / days,
		ratio(float64(above), float64(keys)), ratio(float64(aboveTotal), float64(total))
}

func timestampLag(s *Summary) []TimestampLagStat {
	var out []TimestampLagStat
	for _, t := range []uint16{TypeNodeAnnouncement, TypeChannelUpdate} {
		var v []float64
		for i := range s.Messages {
			m := &s.Messages[i]
			if m.Type == t && m.Gossip != nil {
				v = append(v, float64(m.First)/1e6-float64(m.Gossip.Timestamp))
			}
		}
		slices.Sort(v)
		out = append(out, TimestampLagStat{Type: TypeName(t), Messages: int64(len(v)), Mean: mean(v), P50: nan0(quantileCont(v, 0.5)), P95: nan0(quantileCont(v, 0.95))})
	}
	return out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return ratio(s, float64(len(v)))
}

func nan0(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

// WriteCSV writes the report in long form, one figure per row:
// section,name,key,value. DuckDB and pandas pivot it as needed.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }
	i := func(x int64) string { return strconv.FormatInt(x, 10) }
	rows := [][]string{{"section", "name", "key", "value"},
		{"window", "from", "", r.From.Format(time.RFC3339Nano)},
		{"window", "to", "", r.To.Format(time.RFC3339Nano)},
		{"window", "source", "", r.Source},
		{"window", "hours", "", f(r.Hours)},
		{"window", "peers", "", i(int64(r.Peers))},
	}
	for _, t := range r.Types {
		rows = append(rows,
			[]string{"type", t.Type, "unique", i(t.Unique)},
			[]string{"type", t.Type, "unique_per_min", f(t.UniquePerMin)},
			[]string{"type", t.Type, "unique_bytes", i(t.UniqueBytes)},
			[]string{"type", t.Type, "receipts", i(t.Receipts)},
			[]string{"type", t.Type, "redundancy", f(t.Redundancy)},
			[]string{"type", t.Type, "duplicate_bytes", i(t.DuplicateBytes)})
	}
	c := r.Convergence
	rows = append(rows, []string{"convergence", "min_peers", "", i(int64(c.MinPeers))},
		[]string{"convergence", "messages", "", i(int64(c.Messages))},
		[]string{"convergence", "avg_peers", "", f(c.AvgPeers)})
	for _, q := range c.Quantiles {
		name := "q" + f(q.Q*100)
		rows = append(rows, []string{"convergence", name, "mean", f(q.Mean)},
			[]string{"convergence", name, "p50", f(q.P50)}, []string{"convergence", name, "p95", f(q.P95)})
	}
	for _, p := range r.Coverage {
		name := "t" + f(p.Seconds)
		rows = append(rows, []string{"coverage", name, "mean", f(p.Mean)}, []string{"coverage", name, "p50", f(p.P50)})
	}
	pm := r.PeersPerMessage
	for _, b := range pm.Histogram {
		rows = append(rows, []string{"peers_per_message", "histogram", i(int64(b.Peers)), i(b.Messages)})
	}
	for _, b := range pm.Cumulative {
		rows = append(rows, []string{"peers_per_message", "cumulative", i(int64(b.MaxPeers)), f(b.Share)})
	}
	rows = append(rows, []string{"peers_per_message", "median", "", f(pm.Median)},
		[]string{"peers_per_message", "p75", "", f(pm.P75)}, []string{"peers_per_message", "p90", "", f(pm.P90)},
		[]string{"peers_per_message", "max", "", i(int64(pm.Max))})
	for _, p := range r.PeerStats {
		name := i(int64(p.Peer))
		rows = append(rows, []string{"peer", name, "delivered", i(p.Delivered)},
			[]string{"peer", name, "eligible", i(p.Eligible)},
			[]string{"peer", name, "relay_ratio", f(p.RelayRatio)},
			[]string{"peer", name, "lag_p50", f(p.LagP50)},
			[]string{"peer", name, "lag_p95", f(p.LagP95)},
			[]string{"peer", name, "first_responder_share", f(p.FirstResponderShare)},
			[]string{"peer", name, "bytes", i(p.Bytes)})
	}
	q := r.Frequency
	rows = append(rows, []string{"frequency", "days", "", f(q.Days)},
		[]string{"frequency", "scids", "", i(int64(q.SCIDs))},
		[]string{"frequency", "updates", "", i(q.Updates)},
		[]string{"frequency", "mean_per_scid_per_day", "", f(q.MeanPerSCIDPerDay)},
		[]string{"frequency", "max_per_scid_per_day", "", f(q.MaxPerSCIDPerDay)},
		[]string{"frequency", "scids_above_cap_share", "", f(q.SCIDsAboveCapShare)},
		[]string{"frequency", "updates_above_cap_share", "", f(q.UpdatesAboveCapShare)},
		[]string{"frequency", "nodes", "", i(int64(q.Nodes))},
		[]string{"frequency", "announcements", "", i(q.Announcements)},
		[]string{"frequency", "mean_per_node_per_day", "", f(q.MeanPerNodePerDay)},
		[]string{"frequency", "max_per_node_per_day", "", f(q.MaxPerNodePerDay)},
		[]string{"frequency", "nodes_above_cap_share", "", f(q.NodesAboveCapShare)},
		[]string{"frequency", "announcements_above_cap", "", f(q.AnnouncementsAboveCap)},
		[]string{"frequency", "keep_alives", "", i(q.KeepAlives)},
		[]string{"frequency", "keep_alive_share", "", f(q.KeepAliveShare)},
		[]string{"frequency", "updates_without_gossip_row", "", i(q.UpdatesWithoutGossipRow)})
	for _, t := range r.TimestampLag {
		rows = append(rows, []string{"timestamp_lag", t.Type, "messages", i(t.Messages)},
			[]string{"timestamp_lag", t.Type, "mean", f(t.Mean)},
			[]string{"timestamp_lag", t.Type, "p50", f(t.P50)}, []string{"timestamp_lag", t.Type, "p95", f(t.P95)})
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}
