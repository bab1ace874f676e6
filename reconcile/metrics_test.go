package reconcile_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lnsync/lnsync/reconcile"
	"github.com/lnsync/lnsync/reconcile/reconciletest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func uniformDelay(hi time.Duration) func(r *rand.Rand) time.Duration {
	return func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(hi))) }
}

func within(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.4f, want %.4f ± %.4f", name, got, want, tol)
	}
}

func report(w *reconcile.Window) *reconcile.Report {
	return reconcile.BuildReport(reconcile.Summarize(w), reconcile.SourceRaw, reconcile.ReportOptions{})
}

// TestRecoversGeneratedDistributions checks every figure whose truth the
// generator knows: exact counts, and per-peer lag and relay ratio within the
// tolerance of the histogram and of sampling.
func TestRecoversGeneratedDistributions(t *testing.T) {
	const peers = 40
	hold := func(p int32) time.Duration { return time.Duration(p%5) * 20 * time.Second }
	ds := reconciletest.Generate(reconciletest.Config{
		Seed: 1, Start: t0, Duration: 3 * time.Hour, Peers: peers, PerMinute: 300,
		Delay: uniformDelay(120 * time.Second), HoldBack: hold,
	})
	from, to := t0.Add(time.Hour), t0.Add(2*time.Hour)
	rep := report(ds.Window(from, to))

	// Truth of the messages first sighted in the window.
	wantHist := make(map[int]int64)
	wantType := make(map[string]int64)
	var unique, receipts, bytes, dupBytes, others int64
	for _, m := range ds.Messages {
		if m.Origin < from.UnixMicro() || m.Origin >= to.UnixMicro() {
			continue
		}
		unique++
		wantHist[m.Peers]++
		wantType[reconcile.TypeName(m.Type)]++
		receipts += int64(m.Peers)
		others += int64(m.Peers - 1)
		bytes += int64(m.Size)
		dupBytes += int64(m.Size) * int64(m.Peers-1)
	}
	all := rep.Types[len(rep.Types)-1]
	if all.Unique != unique || all.Receipts != receipts || all.UniqueBytes != bytes || all.DuplicateBytes != dupBytes {
		t.Errorf("all types = %+v, want unique %d receipts %d bytes %d duplicate bytes %d", all, unique, receipts, bytes, dupBytes)
	}
	within(t, "unique per minute", all.UniquePerMin, float64(unique)/60, 1e-9)
	within(t, "redundancy", all.Redundancy, float64(receipts)/float64(unique), 1e-9)
	for _, ts := range rep.Types[:len(rep.Types)-1] {
		if ts.Unique != wantType[ts.Type] {
			t.Errorf("%s unique = %d, want %d", ts.Type, ts.Unique, wantType[ts.Type])
		}
	}
	if len(rep.PeersPerMessage.Histogram) != len(wantHist) {
		t.Errorf("histogram has %d bins, want %d", len(rep.PeersPerMessage.Histogram), len(wantHist))
	}
	for _, b := range rep.PeersPerMessage.Histogram {
		if wantHist[b.Peers] != b.Messages {
			t.Errorf("messages from %d peers = %d, want %d", b.Peers, b.Messages, wantHist[b.Peers])
		}
	}
	if rep.Peers != peers {
		t.Errorf("peers = %d, want %d", rep.Peers, peers)
	}

	// Peers 2..n are chosen uniformly: each relays a share E[K−1]/(n−1).
	wantRatio := float64(others) / float64(unique) / (peers - 1)
	for _, p := range rep.PeerStats {
		if p.Peer == 1 {
			if p.RelayRatio != 1 || p.FirstResponderShare != 1 || p.LagP50 != 0 {
				t.Errorf("source peer: %+v, want relay ratio 1, first responder share 1, lag 0", p)
			}
			continue
		}
		within(t, "relay ratio", p.RelayRatio, wantRatio, 0.03)
		// Lag = hold-back + U[0, 120 s): median hold+60 s, p95 hold+114 s.
		// Tolerance: the histogram's 4.4% plus about three standard errors
		// of a sample quantile over ~9,000 deliveries (2 s).
		h := hold(p.Peer).Seconds()
		within(t, "lag p50 of peer", p.LagP50, h+60, 0.044*(h+60)+2)
		within(t, "lag p95 of peer", p.LagP95, h+114, 0.044*(h+114)+2)
		if p.FirstResponderShare != 0 {
			t.Errorf("peer %d first responder share = %v, want 0", p.Peer, p.FirstResponderShare)
		}
	}
}

// TestConvergenceAndCoverageUniform delivers every message to every peer with
// a uniform delay: D_q is close to q·300 s and C(t) to 1/n + (n−1)/n · t/300 s.
func TestConvergenceAndCoverageUniform(t *testing.T) {
	const peers = 60
	ds := reconciletest.Generate(reconciletest.Config{
		Seed: 2, Start: t0, Duration: 2 * time.Hour, Peers: peers, PerMinute: 60,
		RelayProb: func(int32) float64 { return 1 },
		Delay:     uniformDelay(300 * time.Second),
	})
	rep := report(ds.Window(t0.Add(30*time.Minute), t0.Add(90*time.Minute)))
	c := rep.Convergence
	if c.MinPeers != peers/2 || c.Messages == 0 || c.AvgPeers != peers {
		t.Fatalf("convergence = %+v, want min peers %d, avg peers %d", c, peers/2, peers)
	}
	for _, q := range c.Quantiles {
		// n delays: one 0 and n−1 uniform on [0, 300 s). The i-th order
		// statistic of the uniform ones averages 300·i/n, and the
		// interpolated q-quantile sits at position q·(n−1), so the mean of
		// D_q is q·300·(n−1)/n; one message's D_q spreads by a few seconds.
		want := q.Q * 300 * float64(peers-1) / float64(peers)
		within(t, "mean D_q", q.Mean, want, 0.01*want+1)
		within(t, "p50 D_q", q.P50, want, 0.02*want+2)
		if q.P95 < q.P50 {
			t.Errorf("q %v: p95 %v below p50 %v", q.Q, q.P95, q.P50)
		}
	}
	for _, cp := range rep.Coverage {
		share := math.Min(1, cp.Seconds/300)
		want := 1.0/peers + float64(peers-1)/peers*share
		within(t, "coverage", cp.Mean, want, 0.015)
	}
}

// TestRelayRatioPerPeerAndSessions gives each peer its own relay probability
// and takes one peer offline for part of the window: its relay ratio only
// counts messages first sighted while it was connected.
func TestRelayRatioPerPeerAndSessions(t *testing.T) {
	prob := func(p int32) float64 { return 0.2 + 0.2*float64(p%4) }
	off := reconcile.Interval{From: t0.Add(70 * time.Minute).UnixMicro(), To: t0.Add(100 * time.Minute).UnixMicro()}
	ds := reconciletest.Generate(reconciletest.Config{
		Seed: 3, Start: t0, Duration: 3 * time.Hour, Peers: 12, PerMinute: 200,
		RelayProb: prob, Delay: uniformDelay(30 * time.Second),
		Offline: map[int32]reconcile.Interval{7: off},
	})
	from, to := t0.Add(time.Hour), t0.Add(2*time.Hour)
	rep := report(ds.Window(from, to))
	var unique int64
	var offline int64
	for _, m := range ds.Messages {
		if m.Origin >= from.UnixMicro() && m.Origin < to.UnixMicro() {
			unique++
			if m.Origin >= off.From && m.Origin < off.To {
				offline++
			}
		}
	}
	for _, p := range rep.PeerStats {
		if p.Peer == 1 {
			continue
		}
		within(t, "relay ratio", p.RelayRatio, prob(p.Peer), 0.03)
		wantEligible := unique
		if p.Peer == 7 {
			wantEligible = unique - offline
		}
		if p.Eligible != wantEligible {
			t.Errorf("peer %d eligible = %d, want %d", p.Peer, p.Eligible, wantEligible)
		}
	}
}

func TestEmptyWindowReport(t *testing.T) {
	w := reconcile.NewBuilder(t0.UnixMicro(), t0.Add(time.Hour).UnixMicro()).Window()
	rep := report(w)
	if rep.Types[len(rep.Types)-1].Unique != 0 || rep.Peers != 0 || rep.Convergence.Messages != 0 || rep.PeersPerMessage.Max != 0 {
		t.Fatalf("empty window report = %+v", rep)
	}
}

func TestLagBucketResolution(t *testing.T) {
	for _, lag := range []time.Duration{time.Millisecond, 7 * time.Millisecond, time.Second, 61 * time.Second, 59 * time.Minute} {
		var h reconcile.LagHistogram
		h[reconcile.LagBucket(uint32(lag.Microseconds()))]++
		got := h.Quantile(0.5)
		if rel := math.Abs(got-lag.Seconds()) / lag.Seconds(); rel > 0.045 {
			t.Errorf("lag %v reported as %vs (%.1f%% off)", lag, got, 100*rel)
		}
	}
	var h reconcile.LagHistogram
	h[reconcile.LagBucket(999)]++
	if h.Quantile(0.5) != 0 {
		t.Errorf("sub-millisecond lag reported as %v, want 0", h.Quantile(0.5))
	}
}
