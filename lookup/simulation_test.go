package lookup_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lnsync/lnsync/conformance"
	"github.com/lnsync/lnsync/rgs"
)

// evolve stores days of a small network's life from start: channels open and
// close, fees change, nodes change addresses, some nodes go quiet for days,
// and every live direction re-broadcasts a keep-alive within 10 days. Every
// sixth channel is one-sided: it connects one of 8 further nodes whose side
// never sends a channel_update, so those nodes have half channels only.
func evolve(f *fixture, start time.Time, days int) {
	rng := rand.New(rand.NewPCG(7, 7))
	type live struct {
		id       uint64
		a, b     byte
		nextKeep [2]time.Time
		fee      [2]uint32
		closed   bool
		oneSided bool
	}
	var chans []*live
	quietUntil := map[byte]time.Time{}
	next := 0
	open := func(t time.Time) {
		a, b := byte(1+rng.IntN(40)), byte(1+rng.IntN(40))
		for b == a {
			b = byte(1 + rng.IntN(40))
		}
		oneSided := next%6 == 5
		if oneSided {
			b = byte(41 + rng.IntN(8))
		}
		if a > b {
			a, b = b, a
		}
		c := &live{id: scid(830000+uint64(next), uint64(next%5)), a: a, b: b, oneSided: oneSided}
		next++
		f.announce(c.id, a, b, t)
		for d := range 2 - btoi(oneSided) {
			c.fee[d] = uint32(rng.IntN(1000))
			f.update(c.id, upd{dir: uint8(d), ts: t, seen: t.Add(time.Second), fee: c.fee[d], ppm: 100})
			c.nextKeep[d] = t.Add(time.Duration(5+rng.IntN(5)) * day)
		}
		chans = append(chans, c)
	}
	for i := range 48 {
		f.node(byte(1+i), start, start, []byte{0x02, 0x20}, ipv4(10, 0, 0, byte(i), 9735))
	}
	for range 80 {
		open(start)
	}
	for h := 1; h <= days*24; h++ {
		t := start.Add(time.Duration(h) * time.Hour)
		if h%8 == 0 {
			open(t.Add(-time.Duration(rng.IntN(3600)) * time.Second))
		}
		if h%12 == 0 && len(chans) > 0 {
			chans[rng.IntN(len(chans))].closed = true // goes silent: clients drop it after 14 days
		}
		if h%24 == 0 {
			n := byte(1 + rng.IntN(40))
			quietUntil[n] = t.Add(time.Duration(2+rng.IntN(3)) * day)
		}
		if h%6 == 0 {
			n := byte(1 + rng.IntN(40))
			f.node(n, t, t.Add(time.Minute), []byte{0x02, 0x20}, ipv4(10, 1, byte(h>>8), byte(h), 9735))
		}
		for _, c := range chans {
			if c.closed {
				continue
			}
			for d := range 2 - btoi(c.oneSided) {
				signer := c.a
				if d == 1 {
					signer = c.b
				}
				if t.Before(quietUntil[signer]) {
					continue
				}
				change := rng.Float64() < 0.01
				if !change && t.Before(c.nextKeep[d]) {
					continue
				}
				if change {
					c.fee[d] = uint32(rng.IntN(1000))
				}
				ts := t.Add(-time.Duration(rng.IntN(1800)) * time.Second)
				f.update(c.id, upd{dir: uint8(d), ts: ts, seen: ts.Add(time.Duration(rng.IntN(300)) * time.Second), fee: c.fee[d], ppm: 100, disabled: rng.Float64() < 0.02})
				c.nextKeep[d] = t.Add(time.Duration(5+rng.IntN(5)) * day)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// withoutChannels drops the given channels from g and from its nodes'
// channel lists.
func withoutChannels(g *conformance.Graph, drop map[uint64]bool) *conformance.Graph {
	c := *g
	c.Channels = nil
	for _, ch := range g.Channels {
		if !drop[ch.SCID] {
			c.Channels = append(c.Channels, ch)
		}
	}
	c.Nodes = nil
	for _, n := range g.Nodes {
		var kept []uint64
		for _, id := range n.Channels {
			if !drop[id] {
				kept = append(kept, id)
			}
		}
		if len(kept) == 0 {
			continue
		}
		n.Channels = kept
		c.Nodes = append(c.Nodes, n)
	}
	return &c
}

// halfChannels returns the channels of g that have one direction only.
func halfChannels(g *conformance.Graph) map[uint64]bool {
	out := map[uint64]bool{}
	for _, c := range g.Channels {
		if c.OneToTwo == nil || c.TwoToOne == nil {
			out[c.SCID] = true
		}
	}
	return out
}

// nodesOnlyOn returns the nodes of g all of whose channels are in chans.
func nodesOnlyOn(g *conformance.Graph, chans map[uint64]bool) map[rgs.NodeID]bool {
	out := map[rgs.NodeID]bool{}
	for _, n := range g.Nodes {
		only := len(n.Channels) > 0
		for _, id := range n.Channels {
			only = only && chans[id]
		}
		if only {
			out[n.NodeID] = true
		}
	}
	return out
}

// withoutTimes clears the timestamps LDK stores (they depend on which file
// carried the data), leaving what routing uses.
func withoutTimes(g *conformance.Graph) *conformance.Graph {
	c := *g
	c.Channels = append([]conformance.Channel(nil), g.Channels...)
	for i := range c.Channels {
		for _, d := range []**conformance.Direction{&c.Channels[i].OneToTwo, &c.Channels[i].TwoToOne} {
			if *d != nil {
				v := **d
				v.LastUpdate = 0
				*d = &v
			}
		}
	}
	c.Nodes = append([]conformance.Node(nil), g.Nodes...)
	for i := range c.Nodes {
		if a := c.Nodes[i].Announcement; a != nil {
			v := *a
			v.LastUpdate = 0
			c.Nodes[i].Announcement = &v
		}
	}
	return &c
}

// TestLongRunClientsConverge replays three weeks of an evolving network to LDK
// clients syncing every 1 h, 3 h, 24 h, 45 h, 48 h, 87 h, 90 h, 96 h, 6, 7,
// 10 and 14 days (each starting from a full snapshot, applying every delta
// with the real clock of its sync). Each ends with exactly the graph of a
// client that applies one full snapshot at the end; at every daily
// checkpoint (and every sync of the slower clients) no channel that is live
// on the server is missing from the client; and for every cadence up to 7
// days, a client that prunes just before its next sync, as LDK's background
// processor does every hour, has lost no channel that is live on the server
// at both syncs. (Beyond 7 days a client outlives everything it was told:
// LDK backdates RGS data by 7 days and prunes it at 14.)
func TestLongRunClientsConverge(t *testing.T) {
	f := newFixture(t)
	start := epoch
	const days = 21
	evolve(f, start, days)
	end := start.Add(days * day)
	ctx := context.Background()
	if err := f.w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.index.CatchUp(ctx, end); err != nil {
		t.Fatal(err)
	}
	encode := func(last, ref time.Time, v int) []byte {
		t.Helper()
		d, _, err := f.index.Delta(last, ref)
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	applyAt := func(ref time.Time) uint64 { return uint64(ref.Add(10 * time.Minute).Unix()) }
	type client struct {
		name    string
		cadence time.Duration
		version int
	}
	clients := []client{{"1h-v2", hour, 2}, {"3h-v2", 3 * hour, 2}, {"24h-v2", day, 2}, {"45h-v2", 45 * hour, 2}, {"48h-v2", 2 * day, 2},
		{"87h-v2", 87 * hour, 2}, {"90h-v2", 90 * hour, 2}, {"96h-v2", 96 * hour, 2}, {"6d-v2", 6 * day, 2}, {"7d-v2", 7 * day, 2},
		{"10d-v2", 10 * day, 2}, {"14d-v2", 14 * day, 2}, {"24h-v1", day, 1}}
	var runs []conformance.Run
	type check struct {
		client string
		at     time.Time
		// next, when set, makes this a check between two syncs: the client
		// applied the files up to at and pruned just before next, as LDK's
		// background processor does every hour. Every channel live on the
		// server at both at and next must still be there.
		next time.Time
	}
	var checks []check
	for _, c := range clients {
		// Start from a full snapshot about 12 days before the end (2 days for
		// the hourly client, whose every file is applied anew at each
		// checkpoint), so that the last sync falls exactly on the end.
		span := 12 * day
		if c.cadence < 3*hour {
			span = 2 * day
		}
		first := end.Add(-max(1, span/c.cadence) * c.cadence)
		files := [][]byte{encode(time.Time{}, first, c.version)}
		nows := []uint64{applyAt(first)}
		last := first
		for ref := first.Add(c.cadence); !ref.After(end); ref = ref.Add(c.cadence) {
			if c.cadence > 3*hour && c.cadence <= 7*day && !ref.Before(end.Add(-2*c.cadence)) {
				// Just before one of the last two syncs, with the files so
				// far (each such run costs LDK about half a second).
				runs = append(runs, conformance.Run{Network: conformance.Mainnet, Nows: append([]uint64(nil), nows...),
					Files: append([][]byte(nil), files...), PruneAt: uint64(ref.Add(-time.Minute).Unix())})
				checks = append(checks, check{c.name, last, ref})
			}
			files = append(files, encode(last, ref, c.version))
			nows = append(nows, applyAt(ref))
			last = ref
			if ref.Sub(first)%day == 0 || c.cadence > day || ref.Equal(end) {
				runs = append(runs, conformance.Run{Network: conformance.Mainnet, Nows: append([]uint64(nil), nows...), Files: append([][]byte(nil), files...)})
				checks = append(checks, check{client: c.name, at: ref})
			}
		}
		if !last.Equal(end) {
			t.Fatalf("client %s ends at %v, not at %v", c.name, last, end)
		}
	}
	// Truth at every checkpoint: one full snapshot applied to a fresh client.
	truthAt := map[time.Time]int{}
	for _, ck := range checks {
		for _, at := range []time.Time{ck.at, ck.next} {
			if _, ok := truthAt[at]; !ok && !at.IsZero() {
				truthAt[at] = len(runs)
				runs = append(runs, conformance.Run{Network: conformance.Mainnet, Now: applyAt(at), Files: [][]byte{encode(time.Time{}, at, 2)}})
			}
		}
	}
	graphs, err := conformance.ApplyLDKRuns(ctx, runs)
	if err != nil {
		t.Fatal(err)
	}
	// Channels served with one live direction: LDK drops them 7 days after
	// the file that brought them and re-adds them when sent again, so a
	// client may lack one for a while; they are counted, not required.
	type tally struct{ held, checked, nodesHeld, nodes int }
	halves := map[string]*tally{}
	for i, ck := range checks {
		got, want := graphs[i], graphs[truthAt[ck.at]]
		for j, r := range got.Results {
			if !r.OK {
				t.Fatalf("%s at %v: file %d rejected: %s", ck.client, ck.at, j, r.Error)
			}
		}
		if len(want.Channels) < 50 {
			t.Fatalf("truth at %v has only %d channels", ck.at, len(want.Channels))
		}
		have := map[uint64]bool{}
		for _, c := range got.Channels {
			have[c.SCID] = true
		}
		half := halfChannels(want)
		if !ck.next.IsZero() {
			stillLive := map[uint64]bool{}
			for _, c := range graphs[truthAt[ck.next]].Channels {
				stillLive[c.SCID] = !halfChannels(graphs[truthAt[ck.next]])[c.SCID]
			}
			for _, c := range want.Channels {
				if !half[c.SCID] && stillLive[c.SCID] && !have[c.SCID] {
					t.Errorf("%s synced at %v: live channel %d pruned before the next sync at %v", ck.client, ck.at, c.SCID, ck.next)
				}
			}
			continue
		}
		h := halves[ck.client]
		if h == nil {
			h = &tally{}
			halves[ck.client] = h
		}
		for _, c := range want.Channels {
			switch {
			case half[c.SCID]:
				h.checked++
				if have[c.SCID] {
					h.held++
				}
			case !have[c.SCID]:
				t.Errorf("%s at %v: live channel %d missing", ck.client, ck.at, c.SCID)
			}
		}
		onlyHalf := nodesOnlyOn(want, half)
		gotNodes := map[rgs.NodeID]bool{}
		for _, n := range got.Nodes {
			gotNodes[n.NodeID] = true
		}
		for id := range onlyHalf {
			h.nodes++
			if gotNodes[id] {
				h.nodesHeld++
			}
		}
		if ck.at.Equal(end) {
			// A channel the server stopped sending (it closed and went silent)
			// stays on a client until its data, backdated by 7 days, turns 14
			// days old: it must have been live within the last 7 days.
			lingering := map[uint64]bool{}
			inTruth := map[uint64]bool{}
			for _, c := range want.Channels {
				inTruth[c.SCID] = true
			}
			for _, c := range got.Channels {
				if inTruth[c.SCID] {
					continue
				}
				recent := false
				for at, i := range truthAt {
					if at.Before(end.Add(-7 * day)) {
						continue
					}
					for _, w := range graphs[i].Channels {
						recent = recent || w.SCID == c.SCID
					}
				}
				if !recent {
					t.Errorf("%s holds channel %d that was not live on the server in the last 7 days", ck.client, c.SCID)
				}
				lingering[c.SCID] = true
			}
			for id := range half {
				lingering[id] = true
			}
			gotG, wantG := withoutTimes(withoutChannels(got, lingering)), withoutTimes(withoutChannels(want, half))
			if ck.client == "24h-v1" {
				// Version 1 carries no node data: compare channels only.
				gotG.Nodes, wantG.Nodes = nil, nil
			}
			if diff := conformance.Diff(gotG, wantG, 10); len(diff) > 0 {
				t.Errorf("%s differs from a fresh full sync at the end:\n%v", ck.client, fmt.Sprint(diff))
			}
		}
	}
	for _, c := range clients {
		h := halves[c.name]
		if h == nil || h.checked == 0 {
			t.Fatalf("%s: no half channel checked", c.name)
		}
		share := float64(h.held) / float64(h.checked)
		t.Logf("%s: held %d of %d half channels at its checks (%.1f%%), %d of %d nodes that only they carry",
			c.name, h.held, h.checked, 100*share, h.nodesHeld, h.nodes)
		// Sent only when new (as the reference server does), clients of
		// every cadence up to 4 days hold 54-67% of them here; beyond 7 days
		// a client drops them at every other sync whatever is sent.
		switch {
		case c.cadence <= 2*day && share < 0.85, c.cadence <= 6*day && share < 0.68:
			t.Errorf("%s holds only %.1f%% of the half channels at its checks", c.name, 100*share)
		}
	}
	final := graphs[truthAt[end]]
	half := halfChannels(final)
	lone := nodesOnlyOn(final, half)
	if len(half) == 0 || len(lone) == 0 {
		t.Errorf("a fresh full sync at the end holds %d half channels and %d nodes only they carry; want some of each", len(half), len(lone))
	}
	t.Logf("%d LDK runs; final graph %d channels (%d half), %d nodes (%d only on half channels)", len(runs), len(final.Channels), len(half), len(final.Nodes), len(lone))
}

var _ = rgs.Version2
