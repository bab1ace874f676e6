package conformance

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/lnsync/lnsync/rgs"
)

// Client constants the model follows.
const (
	backdate = 7 * 24 * 3600
	// maxValueMsat is the total bitcoin supply in msat; LDK ignores updates
	// whose htlc_maximum_msat exceeds it.
	maxValueMsat = 21_000_000 * 100_000_000 * 1000
)

// Input is one file for Simulate: the delta and the version it was encoded in
// (version 1 drops node data and funding amounts).
type Input struct {
	Delta   *rgs.Delta
	Version int
}

type modelChannel struct {
	ch   Channel
	dirs [2]*Direction
}

// Simulate returns the graph LDK 0.1 should hold after applying inputs in order to
// a fresh graph with no current time (no staleness check, no pruning). It models
// the client semantics the files are meant to carry: announcements add unknown
// channels (capacity stays unknown in 0.1); node data replaces addresses and
// features of nodes that have a channel, unless they already hold data as new;
// full updates replace a direction, incremental updates and reminders modify a
// direction the client already has; an update not newer than what the client has,
// or with htlc_maximum_msat above the bitcoin supply, is ignored. Results are not
// modelled.
func Simulate(inputs []Input) *Graph {
	channels := map[uint64]*modelChannel{}
	nodes := map[rgs.NodeID]*NodeAnnouncement{}
	nodeChans := map[rgs.NodeID][]uint64{}
	var last *uint32
	for _, in := range inputs {
		d := in.Delta
		bd := uint32(0)
		if d.Timestamp > backdate {
			bd = d.Timestamp - backdate
		}
		for _, a := range d.Announcements {
			if _, ok := channels[a.SCID]; ok {
				continue
			}
			channels[a.SCID] = &modelChannel{ch: Channel{SCID: a.SCID, NodeOne: a.NodeID1, NodeTwo: a.NodeID2,
				Features: normFeatures(a.Features)}}
			nodeChans[a.NodeID1] = append(nodeChans[a.NodeID1], a.SCID)
			nodeChans[a.NodeID2] = append(nodeChans[a.NodeID2], a.SCID)
		}
		if in.Version == rgs.Version2 {
			for _, nd := range d.Nodes {
				if !nd.HasAddresses && !nd.HasFeatures && !nd.Reminder {
					continue
				}
				if len(nodeChans[nd.NodeID]) == 0 {
					continue
				}
				old := nodes[nd.NodeID]
				if old != nil && old.LastUpdate >= bd {
					continue
				}
				na := &NodeAnnouncement{LastUpdate: bd, Features: rgs.Features{}, Addresses: []rgs.Address{}}
				if old != nil {
					na.Features, na.Addresses = old.Features, old.Addresses
				}
				if nd.HasAddresses {
					na.Addresses = []rgs.Address{}
					for _, addr := range nd.Addresses {
						if addr.Usable() {
							na.Addresses = append(na.Addresses, addr)
						}
					}
				}
				if nd.HasFeatures {
					na.Features = normFeatures(nd.Features)
				}
				nodes[nd.NodeID] = na
			}
		}
		if len(d.Updates) == 0 {
			continue
		}
		for _, u := range d.Updates {
			mc := channels[u.SCID]
			if mc == nil {
				continue
			}
			cur := mc.dirs[u.Direction]
			var next Direction
			switch u.Kind {
			case rgs.Full:
				next = fromPolicy(u.Policy)
			default:
				if cur == nil {
					continue
				}
				next = *cur
				if u.Kind == rgs.Incremental {
					applyChanged(&next, u.Policy, u.Changed)
				}
			}
			next.Enabled = !u.Disabled
			next.LastUpdate = bd
			if cur != nil && cur.LastUpdate >= bd {
				continue
			}
			if next.HTLCMaximumMsat > maxValueMsat {
				continue
			}
			mc.dirs[u.Direction] = &next
		}
		ts := d.Timestamp
		last = &ts
	}

	g := &Graph{LastRGSTimestamp: last, Channels: []Channel{}, Nodes: []Node{}}
	for _, mc := range channels {
		ch := mc.ch
		ch.OneToTwo, ch.TwoToOne = mc.dirs[0], mc.dirs[1]
		g.Channels = append(g.Channels, ch)
	}
	slices.SortFunc(g.Channels, func(a, b Channel) int { return cmp.Compare(a.SCID, b.SCID) })
	for id, scids := range nodeChans {
		s := slices.Clone(scids)
		slices.Sort(s)
		g.Nodes = append(g.Nodes, Node{NodeID: id, Channels: s, Announcement: nodes[id]})
	}
	slices.SortFunc(g.Nodes, func(a, b Node) int { return bytes.Compare(a.NodeID[:], b.NodeID[:]) })
	return g
}

func fromPolicy(p rgs.Policy) Direction {
	return Direction{
		CLTVExpiryDelta:           p.CLTVExpiryDelta,
		HTLCMinimumMsat:           p.HTLCMinimumMsat,
		HTLCMaximumMsat:           p.HTLCMaximumMsat,
		FeeBaseMsat:               p.FeeBaseMsat,
		FeeProportionalMillionths: p.FeeProportionalMillionths,
	}
}

func applyChanged(d *Direction, p rgs.Policy, changed rgs.Field) {
	if changed&rgs.FieldCLTVExpiryDelta != 0 {
		d.CLTVExpiryDelta = p.CLTVExpiryDelta
	}
	if changed&rgs.FieldHTLCMinimumMsat != 0 {
		d.HTLCMinimumMsat = p.HTLCMinimumMsat
	}
	if changed&rgs.FieldFeeBaseMsat != 0 {
		d.FeeBaseMsat = p.FeeBaseMsat
	}
	if changed&rgs.FieldFeeProportionalMillionths != 0 {
		d.FeeProportionalMillionths = p.FeeProportionalMillionths
	}
	if changed&rgs.FieldHTLCMaximumMsat != 0 {
		d.HTLCMaximumMsat = p.HTLCMaximumMsat
	}
}

// normFeatures drops leading zero bytes: feature fields compare by their bits.
func normFeatures(f []byte) rgs.Features {
	i := 0
	for i < len(f) && f[i] == 0 {
		i++
	}
	return append(rgs.Features{}, f[i:]...)
}

// Diff lists the differences between the channels and nodes of got and want,
// at most limit of them (0 for all). Features compare by their bits (leading
// zero bytes ignored).
func Diff(got, want *Graph, limit int) []string {
	var out []string
	add := func(format string, args ...any) {
		if limit == 0 || len(out) < limit {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	gc := map[uint64]Channel{}
	for _, c := range got.Channels {
		gc[c.SCID] = c
	}
	wc := map[uint64]Channel{}
	for _, c := range want.Channels {
		wc[c.SCID] = c
		g, ok := gc[c.SCID]
		if !ok {
			add("channel %d missing", c.SCID)
			continue
		}
		if g.NodeOne != c.NodeOne || g.NodeTwo != c.NodeTwo {
			add("channel %d nodes %v/%v, want %v/%v", c.SCID, g.NodeOne, g.NodeTwo, c.NodeOne, c.NodeTwo)
		}
		if !bytes.Equal(normFeatures(g.Features), normFeatures(c.Features)) {
			add("channel %d features %x, want %x", c.SCID, []byte(g.Features), []byte(c.Features))
		}
		if !equalOpt(g.CapacitySats, c.CapacitySats) {
			add("channel %d capacity %s, want %s", c.SCID, optString(g.CapacitySats), optString(c.CapacitySats))
		}
		for i, pair := range [][2]*Direction{{g.OneToTwo, c.OneToTwo}, {g.TwoToOne, c.TwoToOne}} {
			gd, wd := pair[0], pair[1]
			switch {
			case gd == nil && wd == nil:
			case gd == nil:
				add("channel %d direction %d missing, want %+v", c.SCID, i, *wd)
			case wd == nil:
				add("channel %d direction %d = %+v, want none", c.SCID, i, *gd)
			case *gd != *wd:
				add("channel %d direction %d = %+v, want %+v", c.SCID, i, *gd, *wd)
			}
		}
	}
	for _, c := range got.Channels {
		if _, ok := wc[c.SCID]; !ok {
			add("unexpected channel %d", c.SCID)
		}
	}
	gn := map[rgs.NodeID]Node{}
	for _, n := range got.Nodes {
		gn[n.NodeID] = n
	}
	wn := map[rgs.NodeID]bool{}
	for _, n := range want.Nodes {
		wn[n.NodeID] = true
		g, ok := gn[n.NodeID]
		if !ok {
			add("node %v missing", n.NodeID)
			continue
		}
		if !slices.Equal(g.Channels, n.Channels) {
			add("node %v channels %v, want %v", n.NodeID, g.Channels, n.Channels)
		}
		ga, wa := g.Announcement, n.Announcement
		switch {
		case ga == nil && wa == nil:
		case ga == nil:
			add("node %v has no node data, want %+v", n.NodeID, *wa)
		case wa == nil:
			add("node %v has node data %+v, want none", n.NodeID, *ga)
		default:
			if ga.LastUpdate != wa.LastUpdate {
				add("node %v last_update %d, want %d", n.NodeID, ga.LastUpdate, wa.LastUpdate)
			}
			if !bytes.Equal(normFeatures(ga.Features), normFeatures(wa.Features)) {
				add("node %v features %x, want %x", n.NodeID, []byte(ga.Features), []byte(wa.Features))
			}
			if !slices.EqualFunc(ga.Addresses, wa.Addresses, func(a, b rgs.Address) bool { return bytes.Equal(a, b) }) {
				add("node %v addresses %v, want %v", n.NodeID, ga.Addresses, wa.Addresses)
			}
		}
	}
	for _, n := range got.Nodes {
		if !wn[n.NodeID] {
			add("unexpected node %v", n.NodeID)
		}
	}
	if !equalOpt(got.LastRGSTimestamp, want.LastRGSTimestamp) {
		add("last rgs timestamp %s, want %s", optString(got.LastRGSTimestamp), optString(want.LastRGSTimestamp))
	}
	return out
}

func equalOpt[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func optString[T any](p *T) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}
