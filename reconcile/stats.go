package reconcile

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"
)

// ConvergenceQuantiles are the q of the convergence delay D_q(h), the delay
// until a share q of the peers that delivered h had delivered it.
var ConvergenceQuantiles = [5]float64{0.05, 0.25, 0.50, 0.75, 0.95}

// CoverageTimes are the t of the coverage C_h(t), the share of peers
// connected at f(h) that delivered h by f(h)+t.
var CoverageTimes = [7]time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// NumLagBuckets is the number of buckets of a LagHistogram.
const NumLagBuckets = 176

// lagBucketsPerOctave sets the histogram's resolution: bucket bounds grow by
// 2^(1/8), so a bucket's geometric middle is within 4.4% of any lag in it.
const lagBucketsPerOctave = 8

// LagHistogram counts lags r(h,p) − f(h): bucket 0 holds lags below 1 ms,
// bucket i ≥ 1 holds [2^((i−1)/8), 2^(i/8)) ms. Lags are below Horizon, which
// bucket 175 covers. Histograms of disjoint sets add up.
type LagHistogram [NumLagBuckets]int32

// LagBucket returns the bucket of a lag in microseconds.
func LagBucket(us uint32) int {
	if us < 1000 {
		return 0
	}
	i := 1 + int(math.Floor(lagBucketsPerOctave*math.Log2(float64(us)/1000)))
	return min(i, NumLagBuckets-1)
}

// bucketValue is the lag a bucket stands for, in seconds: 0 for bucket 0, else
// its geometric middle.
func bucketValue(i int) float64 {
	if i == 0 {
		return 0
	}
	return math.Exp2((float64(i)-0.5)/lagBucketsPerOctave) / 1000
}

// Quantile returns the q-quantile of the histogram in seconds (nearest rank,
// reported as its bucket's middle), or NaN when it is empty.
func (h *LagHistogram) Quantile(q float64) float64 {
	var n int64
	for _, c := range h {
		n += int64(c)
	}
	if n == 0 {
		return math.NaN()
	}
	target := max(1, int64(math.Ceil(q*float64(n))))
	var cum int64
	for i, c := range h {
		cum += int64(c)
		if cum >= target {
			return bucketValue(i)
		}
	}
	return bucketValue(NumLagBuckets - 1)
}

// MessageStat is what the metrics need of one message; the aggregates store
// one per message and hour of first sighting.
type MessageStat struct {
	Hash     int64
	Type     uint16
	Size     int32
	First    int64 // Unix µs
	Receipts int32 // distinct peers that delivered it within Horizon
	// Connected counts the peers connected at First.
	Connected int32
	// Delay holds D_q(h) in seconds for ConvergenceQuantiles: linearly
	// interpolated quantiles (DuckDB's QUANTILE_CONT) of the delays of all
	// Receipts deliveries, the first one (0) included.
	Delay [len(ConvergenceQuantiles)]float32
	// Covered counts the peers connected at First that delivered the message
	// by First+t, for each t of CoverageTimes.
	Covered [len(CoverageTimes)]int32
	Gossip  *Gossip
}

// PeerStat is what the metrics need of one peer over a window or hour.
type PeerStat struct {
	Peer int32
	// Delivered counts messages of the window the peer delivered.
	Delivered int64
	// Eligible counts messages first sighted while the peer was connected;
	// Relayed those of them it delivered.
	Eligible, Relayed int64
	// FirstResponder counts messages the peer delivered at their first
	// sighting (ties included).
	FirstResponder int64
	// Bytes sums the wire sizes of the messages it delivered.
	Bytes int64
	Lag   LagHistogram
}

// Summary is the per-message and per-peer statistics of a window: everything
// Report needs. Hourly summaries are what the aggregates store.
type Summary struct {
	From, To int64 // Unix µs
	Messages []MessageStat
	Peers    []PeerStat // by peer id
}

// Summarize computes the statistics of w.
func Summarize(w *Window) *Summary {
	s := &Summary{From: w.From, To: w.To, Messages: make([]MessageStat, len(w.Messages))}
	firsts := make([]int64, len(w.Messages))
	for i := range w.Messages {
		firsts[i] = w.Messages[i].First
	}
	peerIdx := make(map[int32]int, len(w.Peers))
	s.Peers = make([]PeerStat, len(w.Peers))
	for i, p := range w.Peers {
		peerIdx[p] = i
		s.Peers[i].Peer = p
		ivs, ok := w.Sessions[p]
		if !ok {
			s.Peers[i].Eligible = int64(len(firsts))
			continue
		}
		for _, iv := range mergeIntervals(ivs) {
			lo, _ := slices.BinarySearch(firsts, iv.From)
			hi, _ := slices.BinarySearch(firsts, iv.To)
			s.Peers[i].Eligible += int64(hi - lo)
		}
	}
	always := 0 // peers without sessions: connected throughout
	for _, p := range w.Peers {
		if _, ok := w.Sessions[p]; !ok {
			always++
		}
	}
	conn := newConnectedCounter(w)
	delays := make([]float64, 0, 64)
	for i := range w.Messages {
		m := &w.Messages[i]
		st := &s.Messages[i]
		*st = MessageStat{Hash: m.Hash, Type: m.Type, Size: m.Size, First: m.First, Receipts: int32(len(m.Deliveries)), Gossip: m.Gossip}
		st.Connected = int32(always + conn.at(m.First))
		delays = delays[:0]
		for _, d := range m.Deliveries {
			delays = append(delays, float64(d.Delay)/1e6)
			ps := &s.Peers[peerIdx[d.Peer]]
			ps.Delivered++
			ps.Bytes += int64(m.Size)
			ps.Lag[LagBucket(d.Delay)]++
			if d.Delay == 0 {
				ps.FirstResponder++
			}
			if w.Connected(d.Peer, m.First) {
				ps.Relayed++
				for j, t := range CoverageTimes {
					if int64(d.Delay) <= t.Microseconds() {
						st.Covered[j]++
					}
				}
			}
		}
		for j, q := range ConvergenceQuantiles {
			st.Delay[j] = float32(quantileCont(delays, q))
		}
	}
	return s
}

// connectedCounter counts peers with sessions connected at increasing times
// by sweeping their session boundaries.
type connectedCounter struct {
	events []event
	next   int
	n      int
}

type event struct {
	t     int64
	delta int
}

func newConnectedCounter(w *Window) *connectedCounter {
	c := &connectedCounter{}
	for _, p := range w.Peers {
		for _, iv := range mergeIntervals(w.Sessions[p]) {
			c.events = append(c.events, event{iv.From, 1}, event{iv.To, -1})
		}
	}
	slices.SortFunc(c.events, func(a, b event) int { return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.delta, b.delta)) })
	return c
}

// at returns the count at t; calls must have non-decreasing t.
func (c *connectedCounter) at(t int64) int {
	for c.next < len(c.events) && c.events[c.next].t <= t {
		c.n += c.events[c.next].delta
		c.next++
	}
	return c.n
}

// mergeIntervals returns sorted intervals with overlaps merged.
func mergeIntervals(ivs []Interval) []Interval {
	if len(ivs) == 0 {
		return nil
	}
	s := slices.Clone(ivs)
	slices.SortFunc(s, func(a, b Interval) int { return cmp.Compare(a.From, b.From) })
	out := s[:1]
	for _, iv := range s[1:] {
		last := &out[len(out)-1]
		if iv.From <= last.To {
			last.To = max(last.To, iv.To)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// quantileCont is the linearly interpolated q-quantile of sorted values, NaN
// when there are none.
func quantileCont(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	pos := q * float64(n-1)
	lo := int(math.Floor(pos))
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (pos-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// Merge adds the hourly summaries parts (in any order) into one summary of
// [from, to): messages are concatenated and peer statistics summed.
func Merge(from, to int64, parts []*Summary) *Summary {
	s := &Summary{From: from, To: to}
	peers := make(map[int32]*PeerStat)
	for _, p := range parts {
		s.Messages = append(s.Messages, p.Messages...)
		for i := range p.Peers {
			ps := &p.Peers[i]
			acc := peers[ps.Peer]
			if acc == nil {
				acc = &PeerStat{Peer: ps.Peer}
				peers[ps.Peer] = acc
			}
			acc.add(ps)
		}
	}
	sort.Slice(s.Messages, func(i, j int) bool {
		a, b := &s.Messages[i], &s.Messages[j]
		return a.First < b.First || a.First == b.First && a.Hash < b.Hash
	})
	for _, ps := range peers {
		s.Peers = append(s.Peers, *ps)
	}
	slices.SortFunc(s.Peers, func(a, b PeerStat) int { return cmp.Compare(a.Peer, b.Peer) })
	return s
}

func (a *PeerStat) add(b *PeerStat) {
	a.Delivered += b.Delivered
	a.Eligible += b.Eligible
	a.Relayed += b.Relayed
	a.FirstResponder += b.FirstResponder
	a.Bytes += b.Bytes
	for i := range a.Lag {
		a.Lag[i] += b.Lag[i]
	}
}
