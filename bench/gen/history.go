package gen

import (
	"cmp"
	"math/rand/v2"
	"slices"
)

type kind uint8

const (
	kindChannelAnn kind = iota
	kindChannelUpd
	kindNodeAnn
)

// event is one message to generate: what, for whom, when (timestamp in
// seconds, receive time in µs) and, for channel_updates, the policy it
// carries and what changed since the direction's previous update.
type event struct {
	recv   int64
	seq    uint64
	idx    int32 // channel or node index
	ts     uint32
	kind   kind
	dir    uint8
	change ChangeSet
	fresh  bool // first update of the direction in this output
	pol    Policy
}

type dirState struct {
	z        float64 // persistent receive-delay factor
	pol      Policy
	lastTS   int64
	lastRecv int64
}

type nodeState struct {
	z        float64 // persistent receive-delay factor
	firstTS  int64   // timestamp of the first announcement; 0 = none yet
	lastTS   int64
	lastRecv int64
}

// history holds the evolving state of the network while days are
// generated in order.
type history struct {
	n        *Network
	dirs     []dirState
	nodes    []nodeState
	caRecv   []int64 // receive time (µs) of each channel's announcement; 0 = not yet
	nodeChan [][]int32
	seq      uint64
	pending  []event
	chModel  senderModel
	ndModel  senderModel
}

func newHistory(n *Network) *history {
	h := &history{
		n:        n,
		dirs:     make([]dirState, 2*len(n.Channels)),
		nodes:    make([]nodeState, len(n.Nodes)),
		caRecv:   make([]int64, len(n.Channels)),
		nodeChan: make([][]int32, len(n.Nodes)),
		chModel:  newSenderModel(n.scidFreq, min(1, ChannelUpdatesPerChannelDay/n.scidFreq.Mean())),
		ndModel:  newSenderModel(n.nodeFreq, min(1, NodeAnnouncementsPerNodeDay/n.nodeFreq.Mean())),
	}
	zr := rand.New(rand.NewPCG(n.Params.Seed, 0x64656c6179)) // "delay"
	for i := range h.dirs {
		h.dirs[i].z = zr.NormFloat64()
	}
	for i := range h.nodes {
		h.nodes[i].z = zr.NormFloat64()
	}
	for i, ch := range n.Channels {
		for _, x := range ch.Nodes {
			h.nodeChan[x] = append(h.nodeChan[x], int32(i))
		}
		h.dirs[2*i].pol = ch.Policies[0]
		h.dirs[2*i+1].pol = ch.Policies[1]
	}
	return h
}

func (h *history) add(out *[]event, e event) {
	e.seq = h.seq
	h.seq++
	*out = append(*out, e)
}

// initial returns the graph as of Params.Start, in the order a full sync
// delivers it (channels by scid, each followed by its two updates, then
// the nodes), all received at Start.
func (h *history) initial() []event {
	n := h.n
	start := n.Params.Start
	rng := rand.New(rand.NewPCG(n.Params.Seed, 0x696e6974)) // "init"
	recv := start * 1e6
	var order []int
	for i, ch := range n.Channels {
		if ch.OpenAt < start {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Compare(n.Channels[a].SCID.ToUint64(), n.Channels[b].SCID.ToUint64())
	})
	var out []event
	for _, i := range order {
		h.caRecv[i] = recv
		h.add(&out, event{recv: recv, idx: int32(i), kind: kindChannelAnn})
		for d := range 2 {
			st := &h.dirs[2*i+d]
			st.lastTS = start - h.chModel.lastActiveAgo(rng, n.rank[i])
			st.lastRecv = recv
			h.add(&out, event{recv: recv, idx: int32(i), ts: uint32(st.lastTS), kind: kindChannelUpd,
				dir: uint8(d), fresh: true, pol: st.pol})
		}
	}
	for x := range n.Nodes {
		if !h.nodeActive(x, start-1) {
			continue
		}
		st := &h.nodes[x]
		st.lastTS = start - h.ndModel.lastActiveAgo(rng, n.rank[len(n.Channels)+x])
		st.firstTS, st.lastRecv = st.lastTS, recv
		h.add(&out, event{recv: recv, idx: int32(x), ts: uint32(st.lastTS), kind: kindNodeAnn})
	}
	return out
}

// nodeActive reports whether node x has an open channel at time t.
func (h *history) nodeActive(x int, t int64) bool {
	for _, ci := range h.nodeChan[x] {
		ch := &h.n.Channels[ci]
		if ch.OpenAt <= t && (ch.CloseAt == 0 || t < ch.CloseAt) {
			return true
		}
	}
	return false
}

// day generates the events whose timestamps fall on day d and returns,
// sorted by receive time, those received before the day ends (all of them
// when last is set); later ones wait for the next day.
func (h *history) day(d int, last bool) []event {
	n := h.n
	lo := n.Params.Start + int64(d)*86400
	hi := lo + 86400
	rng := rand.New(rand.NewPCG(n.Params.Seed, 0x646179<<32|uint64(d))) // "day"
	out := h.pending
	h.pending = nil

	var times [2][]int64
	for i := range n.Channels {
		ch := &n.Channels[i]
		from, to := max(lo, ch.OpenAt+1), hi
		if ch.CloseAt != 0 {
			to = min(to, ch.CloseAt)
		}
		if ch.OpenAt >= lo && ch.OpenAt < hi {
			recv := ch.OpenAt*1e6 + receiveDelay(rng, rng.NormFloat64())
			h.caRecv[i] = recv
			h.add(&out, event{recv: recv, idx: int32(i), kind: kindChannelAnn})
			for dir := range 2 {
				h.update(&out, rng, i, dir, ch.OpenAt+rng.Int64N(600), 0, true)
			}
			for _, x := range ch.Nodes {
				if h.nodes[x].firstTS == 0 {
					h.nodeAnn(&out, rng, x, ch.OpenAt+60+rng.Int64N(600))
				}
			}
		}
		if from >= to {
			continue
		}
		times[0], times[1] = times[0][:0], times[1][:0]
		for range h.chModel.count(rng, n.rank[i]) {
			t := lo + rng.Int64N(86400)
			dir := rng.IntN(2)
			if t >= from && t < to {
				times[dir] = append(times[dir], t)
			}
		}
		for dir := range 2 {
			slices.Sort(times[dir])
			for _, t := range append(times[dir], to) {
				h.refresh(&out, rng, i, dir, lo, t)
				if t < to {
					h.update(&out, rng, i, dir, t, drawChange(rng), false)
				}
			}
		}
		if ch.CloseAt != 0 && ch.CloseAt >= lo && ch.CloseAt < hi && rng.Float64() < closeFinalDisableProb {
			dir := rng.IntN(2)
			if !h.dirs[2*i+dir].pol.Disabled {
				h.update(&out, rng, i, dir, ch.CloseAt, ChangeDisable, false)
			}
		}
	}

	var nt []int64
	for x := range n.Nodes {
		st := &h.nodes[x]
		if st.firstTS == 0 {
			continue
		}
		nt = nt[:0]
		for range h.ndModel.count(rng, n.rank[len(n.Channels)+x]) {
			nt = append(nt, lo+rng.Int64N(86400))
		}
		slices.Sort(nt)
		for _, t := range append(nt, hi) {
			for t-st.lastTS > refreshInterval+refreshJitter {
				k := max(lo, st.lastTS+refreshInterval+rng.Int64N(refreshJitter))
				if !h.nodeActive(x, k) {
					break
				}
				h.nodeAnn(&out, rng, x, k)
			}
			if t < hi && t > st.firstTS && h.nodeActive(x, t) {
				h.nodeAnn(&out, rng, x, t)
			}
		}
	}

	slices.SortFunc(out, func(a, b event) int {
		if c := cmp.Compare(a.recv, b.recv); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	if last {
		return out
	}
	cut, _ := slices.BinarySearchFunc(out, hi*1e6, func(e event, t int64) int { return cmp.Compare(e.recv, t) })
	h.pending = slices.Clone(out[cut:])
	return out[:cut]
}

// refresh emits keep-alive updates, no earlier than lo, while direction
// dir of channel i would otherwise go more than refreshInterval(+jitter)
// without an update before time t.
func (h *history) refresh(out *[]event, rng *rand.Rand, i, dir int, lo, t int64) {
	st := &h.dirs[2*i+dir]
	for t-st.lastTS > refreshInterval+refreshJitter {
		h.update(out, rng, i, dir, max(lo, st.lastTS+refreshInterval+rng.Int64N(refreshJitter)), 0, false)
	}
}

// update emits a channel_update of direction dir of channel i at time t
// (moved past the direction's last timestamp) after applying change.
func (h *history) update(out *[]event, rng *rand.Rand, i, dir int, t int64, change ChangeSet, fresh bool) {
	st := &h.dirs[2*i+dir]
	t = max(t, st.lastTS+1)
	st.pol = applyChange(rng, st.pol, change, h.n.Channels[i].CapacitySat)
	recv := max(t*1e6+receiveDelay(rng, st.z), st.lastRecv+1, h.caRecv[i]+1)
	st.lastTS, st.lastRecv = t, recv
	h.add(out, event{recv: recv, idx: int32(i), ts: uint32(t), kind: kindChannelUpd, dir: uint8(dir),
		change: change, fresh: fresh, pol: st.pol})
}

// nodeAnn emits a node_announcement of node x at time t (moved past its
// last timestamp), received after one of its channels was announced.
func (h *history) nodeAnn(out *[]event, rng *rand.Rand, x int, t int64) {
	st := &h.nodes[x]
	t = max(t, st.lastTS+1)
	recv := max(t*1e6+receiveDelay(rng, st.z), st.lastRecv+1)
	if st.firstTS == 0 {
		st.firstTS = t
		for _, ci := range h.nodeChan[x] {
			if r := h.caRecv[ci]; r != 0 {
				recv = max(recv, r+1)
			}
		}
	}
	st.lastTS, st.lastRecv = t, recv
	h.add(out, event{recv: recv, idx: int32(x), ts: uint32(t), kind: kindNodeAnn})
}

func drawChange(rng *rand.Rand) ChangeSet {
	return ChangeSets[weighted(rng, len(ChangeSets), func(i int) int { return ChangeSets[i].Count })].Set
}

var (
	cltvChoices    = []uint16{18, 34, 40, 72, 80, 100, 144, 288}
	feeBaseChoices = []uint32{0, 1, 100, 500, 1000, 2000}
	htlcMinChoices = []uint64{1, 1000, 10_000, 100_000, 1_000_000}
	htlcMaxShares  = []float64{1, 0.99, 0.9, 0.5, 0.25, 0.1}
)

// applyChange returns p with every field in c changed to a different,
// plausible value.
func applyChange(rng *rand.Rand, p Policy, c ChangeSet, capacitySat uint64) Policy {
	if c&ChangeDisable != 0 {
		p.Disabled = !p.Disabled
	}
	if c&ChangeCLTV != 0 {
		p.CLTVDelta = pickOther(rng, cltvChoices, p.CLTVDelta)
	}
	if c&ChangeFeeBase != 0 {
		p.FeeBaseMsat = pickOther(rng, feeBaseChoices, p.FeeBaseMsat)
	}
	if c&ChangeFeePPM != 0 {
		old := p.FeePPM
		if old == 0 {
			p.FeePPM = []uint32{1, 10, 50, 100, 500}[rng.IntN(5)]
		} else {
			f := float64(old) * (0.5 + rng.Float64()) // ±50%
			p.FeePPM = uint32(min(max(f, 0), 50000))
		}
		if p.FeePPM == old {
			p.FeePPM = old + 1
		}
	}
	capMsat := capacitySat * 1000
	if c&ChangeHTLCMax != 0 {
		old := p.HTLCMaxMsat
		p.HTLCMaxMsat = 0
		for range 10 {
			v := uint64(float64(capMsat) * htlcMaxShares[rng.IntN(len(htlcMaxShares))])
			if v != old && v >= p.HTLCMinMsat {
				p.HTLCMaxMsat = v
				break
			}
		}
		if p.HTLCMaxMsat == 0 {
			p.HTLCMaxMsat = old + 1
			if old > p.HTLCMinMsat {
				p.HTLCMaxMsat = old - 1
			}
		}
	}
	if c&ChangeHTLCMin != 0 {
		old := p.HTLCMinMsat
		p.HTLCMinMsat = pickOther(rng, htlcMinChoices, old)
		if p.HTLCMinMsat > p.HTLCMaxMsat {
			p.HTLCMinMsat = 1
			if old == 1 {
				p.HTLCMinMsat = 0
			}
		}
	}
	return p
}

func pickOther[T comparable](rng *rand.Rand, choices []T, old T) T {
	for {
		if v := choices[rng.IntN(len(choices))]; v != old {
			return v
		}
	}
}
