package reconcile

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lnsync/lnsync/sketch"
)

// SweepIntervals are the reconciliation intervals tried when a request names
// none (observer notes §3.3 step 9).
var SweepIntervals = []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 90 * time.Second, 2 * time.Minute, 5 * time.Minute}

// Byte costs of the modelled protocol.
const (
	// TransportOverhead is BOLT 8's cost per Lightning message: an encrypted
	// 2-byte length with its 16-byte MAC, and the body's 16-byte MAC.
	TransportOverhead = 34
	// requestPayload is a reconciliation request: set size and q, u16 each,
	// as BIP-330's reqrecon.
	requestPayload = 4
	// typeBytes is the type prefix of every protocol message.
	typeBytes = 2
	// diffHeader is the difference message's own fields (two u16 counts).
	diffHeader = 4
)

// Capacity modes.
const (
	// CapacityMargin sizes each sketch from the true difference:
	// ComputeCapacity(b, ⌈(1+α)·d⌉+β, fpbits). It never fails and prices the
	// cheapest protocol that knew d in advance.
	CapacityMargin = "margin"
	// CapacityEstimate sizes each sketch from the Erlay estimate ĉ instead:
	// ComputeCapacity(b, ⌈(1+α)·ĉ⌉+β, fpbits), paying an extension of the same
	// size when d exceeds it and the peer's full ID set when d exceeds twice it.
	CapacityEstimate = "estimate"
)

// Estimator forms of ĉ.
const (
	// EstimatorMin is Erlay's paper and the 2022 simulator:
	// |Δs| + ⌈q·min(s_us, s_p)⌉ + 1.
	EstimatorMin = "min"
	// EstimatorSum is BIP-330: |Δs| + ⌈q·(s_us + s_p)⌉ + 1.
	EstimatorSum = "sum"
)

// EstimateParams are the inputs of the reconciliation estimate. Zero values
// are not defaults: use DefaultEstimateParams and override.
type EstimateParams struct {
	Interval time.Duration // T
	Bits     int           // b, element size of sketches and short IDs
	Q0       float64       // initial q of the estimator
	Alpha    float64       // multiplicative margin
	Beta     int           // additive margin
	FPBits   int           // false-positive protection of ComputeCapacity
	// Delta is δ_p, how long the peer is taken to hold messages back before
	// flooding; DeltaAuto replaces it by the peer's median lag.
	Delta     time.Duration
	DeltaAuto bool
	Estimator string // EstimatorMin or EstimatorSum
	Capacity  string // CapacityMargin or CapacityEstimate
	// Verify builds, merges and decodes real sketches of both sides' sets
	// each round (with the extension when the first decode fails).
	Verify bool
	// MaxVerifyCapacity skips verification of rounds whose sketch would be
	// larger (decoding is quadratic in the capacity); the extension is tried
	// up to twice this.
	MaxVerifyCapacity int
	// KeepRounds returns every round's figures, not only the distributions.
	KeepRounds bool
}

// DefaultEstimateParams returns the defaults: T = 60 s, b = 32, q₀ = 0.25,
// α = 0.25, β = 2, fpbits = 16, δ = 0, Erlay's min form, margin capacity,
// verification capped at capacity 1024.
func DefaultEstimateParams() EstimateParams {
	return EstimateParams{Interval: time.Minute, Bits: 32, Q0: 0.25, Alpha: 0.25, Beta: 2, FPBits: 16,
		Estimator: EstimatorMin, Capacity: CapacityMargin, MaxVerifyCapacity: 1024}
}

// Validate checks the parameters; its message is fit for a client.
func (p *EstimateParams) Validate() error {
	switch {
	case p.Interval < time.Second:
		return errors.New("interval must be at least 1s")
	case p.Bits < sketch.MinBits || p.Bits > sketch.MaxBits:
		return fmt.Errorf("bits must be in [%d, %d]", sketch.MinBits, sketch.MaxBits)
	case !(p.Q0 >= 0 && p.Q0 <= 1):
		return errors.New("q0 must be in [0, 1]")
	case !(p.Alpha >= 0 && p.Alpha <= 10):
		return errors.New("alpha must be in [0, 10]")
	case p.Beta < 0 || p.Beta > 1000:
		return errors.New("beta must be in [0, 1000]")
	case p.FPBits < 0 || p.FPBits > 256:
		return errors.New("fpbits must be in [0, 256]")
	case p.Delta < 0 || p.Delta > Horizon:
		return errors.New("delta must be in [0, 1h]")
	case p.Estimator != EstimatorMin && p.Estimator != EstimatorSum:
		return errors.New("estimator must be min or sum")
	case p.Capacity != CapacityMargin && p.Capacity != CapacityEstimate:
		return errors.New("capacity must be margin or estimate")
	}
	return nil
}

// Round is one reconciliation round with a peer at T_k (Unix µs).
type Round struct {
	T        int64   `json:"t"`
	SUs      int     `json:"s_us"`
	SPeer    int     `json:"s_peer"`
	Both     int     `json:"both"`
	D        int     `json:"d"`         // s_us + s_peer − 2·both
	OnlyUs   int     `json:"only_us"`   // |U_k|
	OnlyPeer int     `json:"only_peer"` // |P_k|
	Q        float64 `json:"q"`
	Estimate int     `json:"estimate"` // ĉ_k
	Capacity int     `json:"capacity"` // c_k
	Bytes    Bytes   `json:"bytes"`
	FloodIn  int64   `json:"flood_in"`
	FloodOut int64   `json:"flood_out"`
	// Verified is the outcome of real sketches when Verify is set: "decoded",
	// "extension", "failed" or "skipped".
	Verified string `json:"verified,omitempty"`
}

// Bytes splits reconciliation traffic.
type Bytes struct {
	Sketch   int64 `json:"sketch"`   // sketches and extensions
	IDs      int64 `json:"ids"`      // short IDs of the difference (and fallback ID sets)
	Bodies   int64 `json:"bodies"`   // the differing messages themselves
	Overhead int64 `json:"overhead"` // headers, type prefixes and BOLT 8 per message
	Total    int64 `json:"total"`
}

func (b *Bytes) add(o Bytes) {
	b.Sketch += o.Sketch
	b.IDs += o.IDs
	b.Bodies += o.Bodies
	b.Overhead += o.Overhead
	b.Total += o.Total
}

// Dist summarises a per-round figure.
type Dist struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Flooding is what flooding costs on the same link and rounds: observed
// inbound and the counterfactual outbound, each message with TransportOverhead.
type Flooding struct {
	In    int64 `json:"in"`
	Out   int64 `json:"out"`
	Total int64 `json:"total"`
}

// VerifyStats counts the outcomes of real sketches.
type VerifyStats struct {
	Rounds    int `json:"rounds"`
	Decoded   int `json:"decoded"`   // first sketch decoded to the true difference
	Extension int `json:"extension"` // decoded only with the extension
	Failed    int `json:"failed"`    // neither; the fallback applies
	// Wrong counts decodes that succeeded but returned another set (false
	// positives of the sketch); they are also counted as Failed.
	Wrong       int     `json:"wrong"`
	Skipped     int     `json:"skipped"` // capacity above MaxVerifyCapacity
	SuccessRate float64 `json:"success_rate"`
	// Collisions counts pairs of messages of one round sharing a short ID.
	Collisions int `json:"collisions"`
}

// Estimate is the reconciliation estimate of one peer, or of every peer when
// Peer is nil, at one interval.
type Estimate struct {
	Peer          *int32  `json:"peer"` // nil: aggregated over Peers peers
	Peers         int     `json:"peers"`
	Interval      float64 `json:"interval_seconds"`
	Bits          int     `json:"bits"`
	Delta         float64 `json:"delta_seconds"` // δ used; per peer when DeltaAuto (mean here)
	Rounds        int     `json:"rounds"`
	SkippedRounds int     `json:"skipped_rounds"` // the peer was not connected at T_k
	SkippedItems  int     `json:"skipped_items"`  // new items of skipped rounds
	D             Dist    `json:"d"`
	SUs           Dist    `json:"s_us"`
	SPeer         Dist    `json:"s_peer"`
	Capacity      Dist    `json:"capacity"`
	// EstimatorSuccess is P[d ≤ ĉ] over the rounds.
	EstimatorSuccess float64  `json:"estimator_success_rate"`
	ExtensionRate    float64  `json:"extension_rate"` // rounds with d > c
	FallbackRate     float64  `json:"fallback_rate"`  // rounds with d > 2c
	Bytes            Bytes    `json:"bytes"`
	Flooding         Flooding `json:"flooding"`
	// Savings is 1 − reconciliation bytes ÷ flooding bytes.
	Savings float64 `json:"savings"`
	// SketchOverhead is sketch bytes ÷ difference body bytes.
	SketchOverhead float64 `json:"sketch_overhead"`
	// ExpectedCollisions is Σ n²/2^(b+1) over rounds, n = s_us + s_peer.
	ExpectedCollisions float64      `json:"expected_collisions"`
	Verify             *VerifyStats `json:"verify,omitempty"`
	RoundDetail        []Round      `json:"rounds_detail,omitempty"`
}

// estAcc accumulates rounds of one or more peers.
type estAcc struct {
	d, sUs, sP, c              []float64
	rounds, skipped, skipItems int
	estOK, ext, fallback       int
	bytes                      Bytes
	flood                      Flooding
	bodies                     int64
	expColl                    float64
	verify                     *VerifyStats
	detail                     []Round
	deltaSum                   float64
	peers                      int
}

// EstimatePeer computes the estimate for peer p of w. The phase of its rounds
// is i·T/n for the i-th of w's n peers.
func EstimatePeer(w *Window, peer int32, p EstimateParams) (*Estimate, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	i, ok := slices.BinarySearch(w.Peers, peer)
	if !ok {
		return nil, fmt.Errorf("peer %d delivered nothing and had no session in the window", peer)
	}
	acc := &estAcc{}
	if p.Verify {
		acc.verify = &VerifyStats{}
	}
	e := newEstimator(w, p)
	e.peer(acc, peer, i, e.deliveries(peer))
	est := acc.finish(p)
	est.Peer = &peer
	return est, nil
}

// EstimateAll computes the estimate of every peer of w and aggregates it:
// distributions over all (peer, round) pairs, bytes summed.
func EstimateAll(w *Window, p EstimateParams) (*Estimate, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.KeepRounds = false
	acc := &estAcc{}
	if p.Verify {
		acc.verify = &VerifyStats{}
	}
	e := newEstimator(w, p)
	per := make(map[int32][]peerDelivery, len(w.Peers))
	for mi := range w.Messages {
		for _, d := range w.Messages[mi].Deliveries {
			per[d.Peer] = append(per[d.Peer], peerDelivery{msg: int32(mi), delay: d.Delay})
		}
	}
	for i, peer := range w.Peers {
		e.peer(acc, peer, i, per[peer])
	}
	return acc.finish(p), nil
}

type peerDelivery struct {
	msg   int32
	delay uint32
}

type estimator struct {
	w       *Window
	p       EstimateParams
	delayOf []uint32 // per message: the current peer's delay, or noDelivery
}

const noDelivery = math.MaxUint32

func newEstimator(w *Window, p EstimateParams) *estimator {
	e := &estimator{w: w, p: p, delayOf: make([]uint32, len(w.Messages))}
	for i := range e.delayOf {
		e.delayOf[i] = noDelivery
	}
	return e
}

func (e *estimator) deliveries(peer int32) []peerDelivery {
	var out []peerDelivery
	for mi := range e.w.Messages {
		for _, d := range e.w.Messages[mi].Deliveries {
			if d.Peer == peer {
				out = append(out, peerDelivery{msg: int32(mi), delay: d.Delay})
				break
			}
		}
	}
	return out
}

// roundState is one round's accumulating sets.
type roundState struct {
	sUs, sP, both, onlyUs, onlyP int
	bodies                       int64
	floodIn, floodOut            int64
	items                        []int32 // message indices, kept only to verify
}

// peer runs the rounds of one peer, the i-th of the window's peers.
func (e *estimator) peer(acc *estAcc, peer int32, i int, dels []peerDelivery) {
	w, p := e.w, e.p
	T := p.Interval.Microseconds()
	n := int64(len(w.Peers))
	phase := int64(i) * T / n
	base := w.From + phase - T // t_k = base + k·T, W_k = (t_{k−1}, t_k]
	roundOf := func(t int64) int {
		if t <= base+T {
			return 1
		}
		return int((t - base + T - 1) / T)
	}
	last := roundOf(w.To - 1)
	delta := p.Delta.Microseconds()
	if p.DeltaAuto {
		lags := make([]float64, len(dels))
		for j, d := range dels {
			lags[j] = float64(d.delay)
		}
		slices.Sort(lags)
		delta = int64(nan0(quantileCont(lags, 0.5)))
	}
	acc.deltaSum += float64(delta) / 1e6
	acc.peers++
	for _, d := range dels {
		e.delayOf[d.msg] = d.delay
	}
	defer func() {
		for _, d := range dels {
			e.delayOf[d.msg] = noDelivery
		}
	}()
	rounds := make([]roundState, last+1)
	o := int64(TransportOverhead)
	for mi := range w.Messages {
		m := &w.Messages[mi]
		aUs := m.First
		aP := int64(math.MaxInt64)
		dl := e.delayOf[mi]
		if dl != noDelivery {
			aP = m.First + int64(dl) - delta
			if k := roundOf(m.First + int64(dl)); k <= last {
				rounds[k].floodIn += int64(m.Size) + o
			}
		}
		if dl != 0 { // p was not (among) the first to send it: we would forward it
			rounds[roundOf(m.First)].floodOut += int64(m.Size) + o
		}
		k := roundOf(min(aUs, aP))
		tk := base + int64(k)*T
		r := &rounds[k]
		us, pe := aUs <= tk, aP <= tk
		if us {
			r.sUs++
		}
		if pe {
			r.sP++
		}
		switch {
		case us && pe:
			r.both++
		case us:
			r.onlyUs++
			r.bodies += int64(m.Size)
		case pe:
			r.onlyP++
			r.bodies += int64(m.Size)
		}
		if p.Verify {
			r.items = append(r.items, int32(mi))
		}
	}
	q := p.Q0
	for k := 1; k <= last; k++ {
		r := &rounds[k]
		tk := base + int64(k)*T
		if !w.Connected(peer, tk) {
			acc.skipped++
			acc.skipItems += r.onlyUs + r.onlyP + r.both
			continue
		}
		d := r.onlyUs + r.onlyP
		ds := abs(r.sUs - r.sP)
		small, denom := min(r.sUs, r.sP), min(r.sUs, r.sP)
		if p.Estimator == EstimatorSum {
			small, denom = r.sUs+r.sP, r.sUs+r.sP
		}
		est := ds + int(math.Ceil(q*float64(small))) + 1
		var want int
		if p.Capacity == CapacityMargin {
			want = int(math.Ceil((1+p.Alpha)*float64(d))) + p.Beta
		} else {
			want = int(math.Ceil((1+p.Alpha)*float64(est))) + p.Beta
		}
		c := max(1, sketch.ComputeCapacity(p.Bits, want, p.FPBits))
		var b Bytes
		msgs := int64(3) // request, sketch, difference
		b.Sketch = ceilBytes(c, p.Bits)
		b.IDs = ceilBytes(d, p.Bits)
		b.Bodies = r.bodies
		if d > c {
			acc.ext++
			b.Sketch += ceilBytes(c, p.Bits)
			msgs += 2 // extension request and extension
			if d > 2*c {
				acc.fallback++
				b.IDs += ceilBytes(r.sP, p.Bits)
				msgs++
			}
		}
		b.Overhead = requestPayload + diffHeader + msgs*(typeBytes+o) + int64(d)*o
		b.Total = b.Sketch + b.IDs + b.Bodies + b.Overhead
		if d <= est {
			acc.estOK++
		}
		acc.rounds++
		acc.d = append(acc.d, float64(d))
		acc.sUs = append(acc.sUs, float64(r.sUs))
		acc.sP = append(acc.sP, float64(r.sP))
		acc.c = append(acc.c, float64(c))
		acc.bytes.add(b)
		acc.bodies += r.bodies
		acc.flood.In += r.floodIn
		acc.flood.Out += r.floodOut
		nn := float64(r.sUs + r.sP)
		acc.expColl += nn * nn / math.Exp2(float64(p.Bits+1))
		round := Round{T: tk, SUs: r.sUs, SPeer: r.sP, Both: r.both, D: d, OnlyUs: r.onlyUs, OnlyPeer: r.onlyP,
			Q: q, Estimate: est, Capacity: c, Bytes: b, FloodIn: r.floodIn, FloodOut: r.floodOut}
		if p.Verify {
			round.Verified = e.verify(acc.verify, r, tk, delta, c)
		}
		if p.KeepRounds {
			acc.detail = append(acc.detail, round)
		}
		if denom > 0 {
			q = min(1, max(0, float64(d-ds)/float64(denom)))
		}
	}
}

// verify sketches both sides' sets of a round with capacity c, merges and
// decodes them, then retries with the extension (capacity 2c).
func (e *estimator) verify(vs *VerifyStats, r *roundState, tk, delta int64, c int) string {
	vs.Rounds++
	if c > e.p.MaxVerifyCapacity {
		vs.Skipped++
		return "skipped"
	}
	bits := e.p.Bits
	var us, pe []uint64
	want := make(map[uint64]bool) // the difference's IDs, with colliding pairs cancelled
	seen := make(map[uint64]int, len(r.items))
	for _, mi := range r.items {
		m := &e.w.Messages[mi]
		id := ShortID(m.Hash, bits)
		seen[id]++
		inUs := m.First <= tk
		inP := false
		if dl := e.delayOf[mi]; dl != noDelivery {
			inP = m.First+int64(dl)-delta <= tk
		}
		if inUs {
			us = append(us, id)
		}
		if inP {
			pe = append(pe, id)
		}
		if inUs != inP {
			want[id] = !want[id]
		}
	}
	for _, n := range seen {
		vs.Collisions += n * (n - 1) / 2
	}
	var expect []uint64
	for id, in := range want {
		if in {
			expect = append(expect, id)
		}
	}
	slices.Sort(expect)
	try := func(capacity int) (ok, wrong bool) {
		a, _ := sketch.New(bits, capacity)
		b, _ := sketch.New(bits, capacity)
		for _, id := range us {
			a.Add(id)
		}
		for _, id := range pe {
			b.Add(id)
		}
		_ = a.Merge(b)
		got, err := a.Decode(capacity)
		if err != nil {
			return false, false
		}
		if !slices.Equal(got, expect) {
			return false, true
		}
		return true, false
	}
	if ok, wrong := try(c); ok {
		vs.Decoded++
		return "decoded"
	} else if wrong {
		vs.Wrong++
	}
	if ok, wrong := try(2 * c); ok {
		vs.Extension++
		return "extension"
	} else if wrong {
		vs.Wrong++
	}
	vs.Failed++
	return "failed"
}

// ShortID maps a message hash to a nonzero bits-bit sketch element:
// 1 + hash mod (2^bits − 1).
func ShortID(hash int64, bits int) uint64 {
	mod := uint64(1)<<bits - 1
	if bits == 64 {
		mod = math.MaxUint64
	}
	return 1 + uint64(hash)%mod
}

func ceilBytes(n, bits int) int64 { return (int64(n)*int64(bits) + 7) / 8 }

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func (a *estAcc) finish(p EstimateParams) *Estimate {
	est := &Estimate{Peers: a.peers, Interval: p.Interval.Seconds(), Bits: p.Bits, Rounds: a.rounds,
		SkippedRounds: a.skipped, SkippedItems: a.skipItems, Bytes: a.bytes, Flooding: a.flood,
		ExpectedCollisions: a.expColl, RoundDetail: a.detail}
	est.Delta = ratio(a.deltaSum, float64(a.peers))
	est.D, est.SUs, est.SPeer, est.Capacity = dist(a.d), dist(a.sUs), dist(a.sP), dist(a.c)
	est.EstimatorSuccess = ratio(float64(a.estOK), float64(a.rounds))
	est.ExtensionRate = ratio(float64(a.ext), float64(a.rounds))
	est.FallbackRate = ratio(float64(a.fallback), float64(a.rounds))
	est.Flooding.Total = est.Flooding.In + est.Flooding.Out
	if est.Flooding.Total > 0 {
		est.Savings = 1 - float64(est.Bytes.Total)/float64(est.Flooding.Total)
	}
	est.SketchOverhead = ratio(float64(est.Bytes.Sketch), float64(a.bodies))
	if v := a.verify; v != nil {
		v.SuccessRate = ratio(float64(v.Decoded+v.Extension), float64(v.Rounds-v.Skipped))
		est.Verify = v
	}
	return est
}

func dist(v []float64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	slices.Sort(v)
	return Dist{Mean: mean(v), P50: quantileCont(v, 0.5), P95: quantileCont(v, 0.95), P99: quantileCont(v, 0.99), Max: v[len(v)-1]}
}
