package gen

import (
	"math"
	"slices"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"
)

// dayCounts returns, per full day of the history, the number of
// channel_updates and node_announcements whose timestamps fall on it, and
// the per-SCID and per-node counts of that day.
func dayCounts(f *fixture) (cu, na []int, perSCID, perNode [][]int) {
	start := f.net.Params.Start
	days := f.net.Params.Days
	cu, na = make([]int, days), make([]int, days)
	scid := make([]map[uint64]int, days)
	node := make([]map[[33]byte]int, days)
	for d := range days {
		scid[d], node[d] = map[uint64]int{}, map[[33]byte]int{}
	}
	for _, d := range f.msgs {
		if d.file == 0 {
			continue
		}
		switch m := d.msg.(type) {
		case *lnwire.ChannelUpdate1:
			if day := (int64(m.Timestamp) - start) / 86400; day < int64(days) {
				cu[day]++
				scid[day][m.ShortChannelID.ToUint64()]++
			}
		case *lnwire.NodeAnnouncement:
			if day := (int64(m.Timestamp) - start) / 86400; day < int64(days) {
				na[day]++
				node[day][m.NodeID]++
			}
		}
	}
	for d := range days {
		var s, n []int
		for _, c := range scid[d] {
			s = append(s, c)
		}
		for _, c := range node[d] {
			n = append(n, c)
		}
		perSCID, perNode = append(perSCID, s), append(perNode, n)
	}
	return cu, na, perSCID, perNode
}

// ksDistance is the Kolmogorov–Smirnov distance between the empirical
// distributions of two integer samples.
func ksDistance(a, b []int) float64 {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	var d float64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		v := min(a[i], b[j])
		for i < len(a) && a[i] == v {
			i++
		}
		for j < len(b) && b[j] == v {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}

func quantile(s []int, q float64) int {
	s = slices.Sorted(slices.Values(s))
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

func TestRates(t *testing.T) {
	small := smallFixture(t)
	cu, na, _, _ := dayCounts(small)
	var sumCU, sumNA int
	for d := range cu {
		sumCU += cu[d]
		sumNA += na[d]
	}
	gotCU := float64(sumCU) / float64(len(cu))
	gotNA := float64(sumNA) / float64(len(na))
	t.Logf("channel_updates/day %v (mean %.0f, target %.0f); node_announcements/day %v (mean %.0f, target %.0f)",
		cu, gotCU, small.man.TargetUpdates, na, gotNA, small.man.TargetNodeAnns)
	if r := gotCU / small.man.TargetUpdates; r < 0.9 || r > 1.1 {
		t.Errorf("channel_updates per day %.0f, want %.0f ±10%%", gotCU, small.man.TargetUpdates)
	}
	if r := gotNA / small.man.TargetNodeAnns; r < 0.85 || r > 1.15 {
		t.Errorf("node_announcements per day %.0f, want %.0f ±15%%", gotNA, small.man.TargetNodeAnns)
	}
}

func TestFrequencyDistributions(t *testing.T) {
	small := smallFixture(t)
	_, sf, nf, err := loadTopo()
	if err != nil {
		t.Fatal(err)
	}
	_, _, perSCID, perNode := dayCounts(small)
	for d := range perSCID {
		ks := ksDistance(perSCID[d], sf)
		ksN := ksDistance(perNode[d], nf)
		if ks > 0.04 || quantile(perSCID[d], 0.5) != quantile(sf, 0.5) {
			t.Errorf("day %d: per-SCID counts: KS distance %.3f (max 0.04), median %d (source %d)",
				d, ks, quantile(perSCID[d], 0.5), quantile(sf, 0.5))
		}
		if q, want := quantile(perSCID[d], 0.9), quantile(sf, 0.9); q < want-2 || q > want+2 {
			t.Errorf("day %d: per-SCID p90 %d, source %d (±2)", d, q, want)
		}
		if ksN > 0.1 {
			t.Errorf("day %d: per-node counts: KS distance %.3f (max 0.1)", d, ksN)
		}
		// The heavy tail: SCIDs with more than 144 updates a day carry
		// about a fifth of the messages (observer: 18.5%).
		heavy, all := 0, 0
		for _, c := range perSCID[d] {
			all += c
			if c > 144 {
				heavy += c
			}
		}
		if share := float64(heavy) / float64(all); share < 0.08 || share > 0.35 {
			t.Errorf("day %d: SCIDs above 144 updates carry %.1f%% of updates, want 8–35%%", d, 100*share)
		}
		t.Logf("day %d: %d SCIDs, KS %.3f, quantiles p50/p90/p99/max %d/%d/%d/%d vs source %d/%d/%d/%d; %d nodes, KS %.3f, p50/p90 %d/%d vs %d/%d",
			d, len(perSCID[d]), ks,
			quantile(perSCID[d], 0.5), quantile(perSCID[d], 0.9), quantile(perSCID[d], 0.99), quantile(perSCID[d], 1),
			quantile(sf, 0.5), quantile(sf, 0.9), quantile(sf, 0.99), quantile(sf, 1),
			len(perNode[d]), ksN, quantile(perNode[d], 0.5), quantile(perNode[d], 0.9), quantile(nf, 0.5), quantile(nf, 0.9))
	}
}

func TestChangeMix(t *testing.T) {
	small := smallFixture(t)
	last := map[dirKey]*lnwire.ChannelUpdate1{}
	got := map[ChangeSet]int{}
	keep, pairs := 0, 0
	for _, d := range small.msgs {
		u, ok := d.msg.(*lnwire.ChannelUpdate1)
		if !ok {
			continue
		}
		k := dirKey{u.ShortChannelID.ToUint64(), uint8(u.ChannelFlags & 1)}
		prev := last[k]
		last[k] = u
		if prev == nil || d.file == 0 {
			continue
		}
		pairs++
		c := diff(prev, u)
		if c == 0 {
			keep++
		}
		for _, f := range []ChangeSet{ChangeDisable, ChangeCLTV, ChangeHTLCMin, ChangeHTLCMax, ChangeFeeBase, ChangeFeePPM} {
			if c&f != 0 {
				got[f]++
			}
		}
	}
	src := map[ChangeSet]int{}
	srcKeep, srcPairs := 0, 0
	for _, cs := range ChangeSets {
		srcPairs += cs.Count
		if cs.Set == 0 {
			srcKeep += cs.Count
		}
		for _, f := range []ChangeSet{ChangeDisable, ChangeCLTV, ChangeHTLCMin, ChangeHTLCMax, ChangeFeeBase, ChangeFeePPM} {
			if cs.Set&f != 0 {
				src[f] += cs.Count
			}
		}
	}
	share := func(n, of int) float64 { return 100 * float64(n) / float64(of) }
	t.Logf("%d pairs: keep-alive %.2f%% (source %.2f%%)", pairs, share(keep, pairs), share(srcKeep, srcPairs))
	if d := share(keep, pairs) - share(srcKeep, srcPairs); math.Abs(d) > 5 {
		t.Errorf("keep-alives %.2f%% of pairs, source %.2f%% (±5 points)", share(keep, pairs), share(srcKeep, srcPairs))
	}
	names := map[ChangeSet]string{ChangeDisable: "disable", ChangeCLTV: "cltv", ChangeHTLCMin: "htlc_min",
		ChangeHTLCMax: "htlc_max", ChangeFeeBase: "fee_base", ChangeFeePPM: "fee_ppm"}
	for _, f := range []ChangeSet{ChangeDisable, ChangeCLTV, ChangeHTLCMin, ChangeHTLCMax, ChangeFeeBase, ChangeFeePPM} {
		t.Logf("%s changed in %.2f%% of pairs (source %.2f%%)", names[f], share(got[f], pairs), share(src[f], srcPairs))
		if d := share(got[f], pairs) - share(src[f], srcPairs); math.Abs(d) > 5 {
			t.Errorf("%s changed in %.2f%% of pairs, source %.2f%% (±5 points)", names[f], share(got[f], pairs), share(src[f], srcPairs))
		}
	}
	if pairs < 10000 {
		t.Errorf("only %d update pairs", pairs)
	}
}

// diff returns the fields that differ between two updates of a direction.
func diff(a, b *lnwire.ChannelUpdate1) ChangeSet {
	var c ChangeSet
	if a.ChannelFlags&lnwire.ChanUpdateDisabled != b.ChannelFlags&lnwire.ChanUpdateDisabled {
		c |= ChangeDisable
	}
	if a.TimeLockDelta != b.TimeLockDelta {
		c |= ChangeCLTV
	}
	if a.HtlcMinimumMsat != b.HtlcMinimumMsat {
		c |= ChangeHTLCMin
	}
	if a.HtlcMaximumMsat != b.HtlcMaximumMsat {
		c |= ChangeHTLCMax
	}
	if a.BaseFee != b.BaseFee {
		c |= ChangeFeeBase
	}
	if a.FeeRate != b.FeeRate {
		c |= ChangeFeePPM
	}
	return c
}

func TestReceiveDelays(t *testing.T) {
	small := smallFixture(t)
	var delays []float64
	for _, d := range small.msgs {
		if d.file == 0 {
			continue
		}
		var ts uint32
		switch m := d.msg.(type) {
		case *lnwire.ChannelUpdate1:
			ts = m.Timestamp
		case *lnwire.NodeAnnouncement:
			ts = m.Timestamp
		default:
			continue
		}
		delays = append(delays, float64(d.rec.ReceivedAt.UnixMicro()-int64(ts)*1e6)/1e6)
	}
	slices.Sort(delays)
	for _, q := range ReceiveDelayQuantiles {
		if q[0] < 0.05 || q[0] > 0.95 {
			continue // the extremes are too noisy to compare
		}
		got := delays[int(q[0]*float64(len(delays)))]
		if math.Abs(got-q[1]) > max(2, 0.1*q[1]) {
			t.Errorf("receive delay quantile %.2f: %.1f s, source %.1f s (±max(2 s, 10%%))", q[0], got, q[1])
		}
	}
	t.Logf("%d delays: p50 %.1f s, p90 %.1f s, max %.1f s", len(delays),
		delays[len(delays)/2], delays[len(delays)*9/10], delays[len(delays)-1])
}

// addrTypes returns the BOLT 7 address types of a node_announcement,
// parsed from the wire bytes.
func addrTypes(t *testing.T, msg []byte) map[byte]int {
	t.Helper()
	fl := int(msg[66])<<8 | int(msg[67])
	p := 68 + fl + 4 + 33 + 3 + 32
	al := int(msg[p])<<8 | int(msg[p+1])
	a := msg[p+2 : p+2+al]
	out := map[byte]int{}
	for len(a) > 0 {
		n := map[byte]int{1: 6, 2: 18, 3: 12, 4: 37}[a[0]]
		if a[0] == 5 {
			n = int(a[1]) + 3
		}
		if n == 0 || len(a) < 1+n {
			t.Fatalf("bad address list %x", msg[p+2:p+2+al])
		}
		out[a[0]]++
		a = a[1+n:]
	}
	return out
}

func TestAddressMix(t *testing.T) {
	small := smallFixture(t)
	seen := map[[33]byte]bool{}
	var nodes, v4, v6, tor2, tor3, dns, none int
	for _, d := range small.msgs {
		m, ok := d.msg.(*lnwire.NodeAnnouncement)
		if !ok || seen[m.NodeID] {
			continue
		}
		seen[m.NodeID] = true
		nodes++
		ty := addrTypes(t, d.rec.Msg)
		v4 += min(1, ty[1])
		v6 += min(1, ty[2])
		tor2 += ty[3]
		tor3 += min(1, ty[4])
		dns += min(1, ty[5])
		if len(ty) == 0 {
			none++
		}
	}
	var src struct{ total, v4, v6, tor, none int }
	for _, m := range AddressMix {
		src.total += m.Count
		if m.IPv4 {
			src.v4 += m.Count
		}
		if m.IPv6 {
			src.v6 += m.Count
		}
		if m.Tor {
			src.tor += m.Count
		}
		if !m.IPv4 && !m.IPv6 && !m.Tor {
			src.none += m.Count
		}
	}
	pct := func(n, of int) float64 { return 100 * float64(n) / float64(of) }
	for _, c := range []struct {
		name     string
		got, src float64
	}{
		{"ipv4", pct(v4, nodes), pct(src.v4, src.total)},
		{"ipv6", pct(v6, nodes), pct(src.v6, src.total)},
		{"tor v3", pct(tor3, nodes), pct(src.tor, src.total)},
		{"no address", pct(none, nodes), pct(src.none, src.total)},
		{"dns", pct(dns, nodes), 100 * DNSShare * (1 - float64(src.none)/float64(src.total))},
	} {
		t.Logf("%s: %.1f%% of %d nodes (source %.1f%%)", c.name, c.got, nodes, c.src)
		if math.Abs(c.got-c.src) > 4 {
			t.Errorf("%s: %.1f%% of nodes, want %.1f%% ±4 points", c.name, c.got, c.src)
		}
	}
	if tor2 != 0 || dns == 0 || v6 == 0 {
		t.Errorf("tor v2 %d (want 0), dns %d, ipv6 %d (want some)", tor2, dns, v6)
	}
}
