package reconcile_test

import (
	"slices"
	"testing"
	"time"

	"github.com/lnsync/lnsync/reconcile"
	"github.com/lnsync/lnsync/reconcile/reconciletest"
	"github.com/lnsync/lnsync/sketch"
)

// bruteRound is one round computed from explicit sets.
type bruteRound struct {
	t                        int64
	sUs, sP, both, onlyUs, d int
	onlyP                    int
	floodIn, floodOut        int64
}

// brute computes §3.3 steps 1–4 and 8 for one peer with sets, round by
// round, the slow obvious way.
func brute(w *reconcile.Window, peer int32, T, delta time.Duration) []bruteRound {
	idx, _ := slices.BinarySearch(w.Peers, peer)
	Tu := T.Microseconds()
	phase := int64(idx) * Tu / int64(len(w.Peers))
	aUs := map[int64]int64{}
	aP := map[int64]int64{}
	r := map[int64]int64{}
	size := map[int64]int64{}
	first := map[int64]bool{}
	for _, m := range w.Messages {
		aUs[m.Hash] = m.First
		size[m.Hash] = int64(m.Size) + reconcile.TransportOverhead
		for _, d := range m.Deliveries {
			if d.Peer == peer {
				r[m.Hash] = m.First + int64(d.Delay)
				aP[m.Hash] = m.First + int64(d.Delay) - delta.Microseconds()
				first[m.Hash] = d.Delay == 0
			}
		}
	}
	assigned := map[int64]bool{}
	var out []bruteRound
	for k := int64(1); ; k++ {
		tk := w.From + phase - Tu + k*Tu
		prev := tk - Tu
		if prev >= w.To {
			break
		}
		var br bruteRound
		br.t = tk
		for h, us := range aUs {
			if assigned[h] {
				continue
			}
			m := us
			if p, ok := aP[h]; ok && p < m {
				m = p
			}
			if m > tk {
				continue // a later round
			}
			assigned[h] = true // first round after either side has it (earlier ones fold into round 1)
			p, hasP := aP[h]
			inUs, inP := us <= tk, hasP && p <= tk
			if inUs {
				br.sUs++
			}
			if inP {
				br.sP++
			}
			switch {
			case inUs && inP:
				br.both++
			case inUs:
				br.onlyUs++
			case inP:
				br.onlyP++
			}
		}
		for h, at := range r {
			if at > prev && at <= tk || k == 1 && at <= tk {
				br.floodIn += size[h]
			}
		}
		for h, f := range aUs {
			if (f > prev && f <= tk || k == 1 && f <= tk) && !first[h] {
				br.floodOut += size[h]
			}
		}
		br.d = br.onlyUs + br.onlyP
		out = append(out, br)
	}
	return out
}

func smallWindow(seed uint64) *reconcile.Window {
	ds := reconciletest.Generate(reconciletest.Config{
		Seed: seed, Start: t0, Duration: 40 * time.Minute, Peers: 5, PerMinute: 20,
		RelayProb: func(p int32) float64 { return 0.5 + 0.1*float64(p) },
		Delay:     uniformDelay(150 * time.Second),
		HoldBack:  func(p int32) time.Duration { return time.Duration(p) * 5 * time.Second },
	})
	return ds.Window(t0.Add(10*time.Minute), t0.Add(30*time.Minute))
}

// TestEstimateMatchesBruteForce checks set sizes, differences and flooding
// bytes of every round against explicit set computations.
func TestEstimateMatchesBruteForce(t *testing.T) {
	w := smallWindow(4)
	for _, tc := range []struct {
		name  string
		peer  int32
		T     time.Duration
		delta time.Duration
	}{
		{"no hold-back", 3, 30 * time.Second, 0},
		{"hold-back 20s", 3, 30 * time.Second, 20 * time.Second},
		{"long interval", 4, 2 * time.Minute, 45 * time.Second},
		{"short interval", 2, 7 * time.Second, 10 * time.Second},
		{"source peer", 1, 60 * time.Second, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := reconcile.DefaultEstimateParams()
			p.Interval, p.Delta, p.KeepRounds = tc.T, tc.delta, true
			est, err := reconcile.EstimatePeer(w, tc.peer, p)
			if err != nil {
				t.Fatal(err)
			}
			want := brute(w, tc.peer, tc.T, tc.delta)
			if len(est.RoundDetail) != len(want) {
				t.Fatalf("%d rounds, want %d", len(est.RoundDetail), len(want))
			}
			var diffs int
			for i, got := range est.RoundDetail {
				b := want[i]
				if got.T != b.t || got.SUs != b.sUs || got.SPeer != b.sP || got.Both != b.both || got.D != b.d ||
					got.OnlyUs != b.onlyUs || got.OnlyPeer != b.onlyP || got.FloodIn != b.floodIn || got.FloodOut != b.floodOut {
					t.Errorf("round %d = %+v, want %+v", i+1, got, b)
				}
				diffs += got.D
				if got.Capacity < got.D {
					t.Errorf("round %d: margin capacity %d below d %d", i+1, got.Capacity, got.D)
				}
			}
			if tc.delta > 0 && diffs == 0 {
				t.Errorf("no differences at all: the test data exercises nothing")
			}
		})
	}
}

// TestEstimateErlayQ checks the estimator and its q update on the rounds.
func TestEstimateErlayQ(t *testing.T) {
	w := smallWindow(5)
	p := reconcile.DefaultEstimateParams()
	p.Interval, p.Delta, p.KeepRounds, p.Q0 = 20*time.Second, 30*time.Second, true, 0.1
	est, err := reconcile.EstimatePeer(w, 3, p)
	if err != nil {
		t.Fatal(err)
	}
	q := 0.1
	ok := 0
	for i, r := range est.RoundDetail {
		ds := abs(r.SUs - r.SPeer)
		small := min(r.SUs, r.SPeer)
		wantEst := ds + int(ceil(q*float64(small))) + 1
		if r.Q != q || r.Estimate != wantEst {
			t.Fatalf("round %d: q %v estimate %d, want q %v estimate %d", i+1, r.Q, r.Estimate, q, wantEst)
		}
		if r.D <= r.Estimate {
			ok++
		}
		if small > 0 {
			q = min(1, max(0, float64(r.D-ds)/float64(small)))
		}
	}
	if got, want := est.EstimatorSuccess, float64(ok)/float64(len(est.RoundDetail)); got != want {
		t.Errorf("success rate %v, want %v", got, want)
	}
}

// TestVerifyDecodesRealSketches builds real sketches: with the margin
// capacity every round decodes; with the bare estimate the outcome of each
// round follows from d and c (decode iff d ≤ c, extension iff d ≤ 2c).
func TestVerifyDecodesRealSketches(t *testing.T) {
	w := smallWindow(6)
	p := reconcile.DefaultEstimateParams()
	p.Interval, p.Delta, p.Verify, p.KeepRounds = 30*time.Second, 40*time.Second, true, true
	est, err := reconcile.EstimatePeer(w, 4, p)
	if err != nil {
		t.Fatal(err)
	}
	v := est.Verify
	if v.Rounds != est.Rounds || v.Decoded != est.Rounds || v.Failed != 0 || v.Skipped != 0 || v.SuccessRate != 1 {
		t.Errorf("margin capacity: verify = %+v over %d rounds, want all decoded", v, est.Rounds)
	}

	p.Capacity, p.Alpha, p.Beta, p.FPBits, p.Q0 = reconcile.CapacityEstimate, 0, 0, 0, 0
	est, err = reconcile.EstimatePeer(w, 4, p)
	if err != nil {
		t.Fatal(err)
	}
	var ext, failed int
	for i, r := range est.RoundDetail {
		want := "decoded"
		switch {
		case r.D > 2*r.Capacity:
			want = "failed"
			failed++
		case r.D > r.Capacity:
			want = "extension"
			ext++
		}
		if r.Verified != want {
			t.Errorf("round %d: d %d capacity %d verified %q, want %q", i+1, r.D, r.Capacity, r.Verified, want)
		}
	}
	if ext+failed == 0 {
		t.Errorf("the bare estimate never fell short: the test data exercises no extension")
	}
	if got := est.ExtensionRate; got != float64(ext+failed)/float64(est.Rounds) {
		t.Errorf("extension rate %v, want %v", got, float64(ext+failed)/float64(est.Rounds))
	}
	if est.Verify.Extension != ext || est.Verify.Failed != failed {
		t.Errorf("verify = %+v, want %d extensions and %d failures", est.Verify, ext, failed)
	}
}

// TestEstimateBytes checks the byte accounting of one round by hand.
func TestEstimateBytes(t *testing.T) {
	w := smallWindow(7)
	p := reconcile.DefaultEstimateParams()
	p.Interval, p.Delta, p.KeepRounds, p.Bits = time.Minute, 30*time.Second, true, 64
	est, err := reconcile.EstimatePeer(w, 2, p)
	if err != nil {
		t.Fatal(err)
	}
	var total reconcile.Bytes
	for i, r := range est.RoundDetail {
		c := sketch.ComputeCapacity(64, int(ceil(1.25*float64(r.D)))+2, 16)
		if r.Capacity != c {
			t.Fatalf("round %d capacity %d, want %d", i+1, r.Capacity, c)
		}
		if r.Bytes.Sketch != int64(8*c) || r.Bytes.IDs != int64(8*r.D) {
			t.Errorf("round %d bytes %+v, want sketch %d ids %d", i+1, r.Bytes, 8*c, 8*r.D)
		}
		if want := int64(4 + 4 + 3*(2+34) + 34*r.D); r.Bytes.Overhead != want {
			t.Errorf("round %d overhead %d, want %d", i+1, r.Bytes.Overhead, want)
		}
		if r.Bytes.Total != r.Bytes.Sketch+r.Bytes.IDs+r.Bytes.Bodies+r.Bytes.Overhead {
			t.Errorf("round %d total %d is not the sum of %+v", i+1, r.Bytes.Total, r.Bytes)
		}
		total.Total += r.Bytes.Total
	}
	if est.Bytes.Total != total.Total {
		t.Errorf("total bytes %d, want %d", est.Bytes.Total, total.Total)
	}
	want := 1 - float64(est.Bytes.Total)/float64(est.Flooding.In+est.Flooding.Out)
	if est.Savings != want || est.Flooding.Total != est.Flooding.In+est.Flooding.Out {
		t.Errorf("savings %v flooding %+v, want %v", est.Savings, est.Flooding, want)
	}
}

// TestEstimateAllAggregates checks that the all-peer estimate sums the
// per-peer ones.
func TestEstimateAllAggregates(t *testing.T) {
	w := smallWindow(8)
	p := reconcile.DefaultEstimateParams()
	p.Interval, p.Delta = 30*time.Second, 15*time.Second
	all, err := reconcile.EstimateAll(w, p)
	if err != nil {
		t.Fatal(err)
	}
	var rounds int
	var bytes, flood int64
	for _, peer := range w.Peers {
		e, err := reconcile.EstimatePeer(w, peer, p)
		if err != nil {
			t.Fatal(err)
		}
		rounds += e.Rounds
		bytes += e.Bytes.Total
		flood += e.Flooding.Total
	}
	if all.Rounds != rounds || all.Bytes.Total != bytes || all.Flooding.Total != flood || all.Peers != len(w.Peers) {
		t.Errorf("all = %d rounds %d bytes %d flooding, want %d %d %d", all.Rounds, all.Bytes.Total, all.Flooding.Total, rounds, bytes, flood)
	}
}

func TestEstimateParamsValidate(t *testing.T) {
	for name, mod := range map[string]func(*reconcile.EstimateParams){
		"interval": func(p *reconcile.EstimateParams) { p.Interval = time.Millisecond },
		"bits":     func(p *reconcile.EstimateParams) { p.Bits = 65 },
		"q0":       func(p *reconcile.EstimateParams) { p.Q0 = 1.5 },
		"delta":    func(p *reconcile.EstimateParams) { p.Delta = 2 * time.Hour },
		"mode":     func(p *reconcile.EstimateParams) { p.Capacity = "oracle" },
	} {
		p := reconcile.DefaultEstimateParams()
		mod(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: invalid parameters accepted", name)
		}
	}
	p := reconcile.DefaultEstimateParams()
	if err := p.Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

func TestShortID(t *testing.T) {
	for _, bits := range []int{2, 12, 32, 63, 64} {
		for _, h := range []int64{0, 1, -1, 1 << 62, -1 << 63} {
			id := reconcile.ShortID(h, bits)
			if id == 0 || bits < 64 && id >= 1<<bits {
				t.Errorf("ShortID(%d, %d) = %d, out of [1, 2^b−1]", h, bits, id)
			}
		}
	}
}

func abs(x int) int { return max(x, -x) }

func ceil(x float64) float64 {
	n := float64(int64(x))
	if n < x {
		n++
	}
	return n
}
