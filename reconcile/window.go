package reconcile

import (
	"cmp"
	"slices"
	"time"
)

// BOLT 7 gossip message types.
const (
	TypeChannelAnnouncement = 256
	TypeNodeAnnouncement    = 257
	TypeChannelUpdate       = 258
)

// Horizon is how long after a message's first sighting receipts of it still
// count. Later receipts are ignored, as gossip_observer does, so one slow or
// replaying peer cannot stretch the convergence figures.
const Horizon = time.Hour

// Receipt is one row of the receipts table: peer Peer first delivered the
// message with hash Hash at At (Unix microseconds).
type Receipt struct {
	At   int64
	Peer int32
	Hash int64
	Type uint16
	Size int32 // wire bytes including the 2-byte type
}

// Gossip holds the BOLT 7 fields of a channel_update or node_announcement
// that the frequency, keep-alive and timestamp-lag metrics need, linked to
// receipts by message hash.
type Gossip struct {
	Timestamp int64  // BOLT 7 timestamp, Unix seconds
	SCID      int64  // channel_update only
	Direction int16  // channel_update only: 0 or 1
	NodeID    string // node_announcement only: the 33-byte key as a string
	// KeepAlive reports a channel_update whose content, apart from timestamp
	// and signature, equals the previous version of its channel direction.
	KeepAlive bool
}

// Interval is a connection interval [From, To) in Unix microseconds.
type Interval struct{ From, To int64 }

// Delivery is a peer's first delivery of a message, Delay microseconds after
// the message's first sighting.
type Delivery struct {
	Peer  int32
	Delay uint32 // < Horizon in µs, which fits 32 bits
}

// Message is one message of a window with its deliveries, sorted by delay
// (ties by peer). Deliveries[0].Delay is 0.
type Message struct {
	Hash       int64
	Type       uint16
	Size       int32
	First      int64 // first sighting, Unix µs
	Deliveries []Delivery
	Gossip     *Gossip // nil when the gossip row is unknown (or a channel_announcement)
}

// Window is the receipt set of [From, To): every message first sighted in it.
// Messages are sorted by first sighting, then hash. A Window is read-only once
// built and safe for concurrent readers.
type Window struct {
	From, To int64 // Unix µs
	Messages []Message
	// Sessions holds the connection intervals of peers that have any; a peer
	// without sessions that delivered something in the window is taken to be
	// connected throughout (imports and tests record no sessions).
	Sessions map[int32][]Interval
	// Peers lists every peer that delivered a message of the window or had a
	// session overlapping it, ascending.
	Peers []int32
}

// Micros converts t to Unix microseconds.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// Connected reports whether peer p was connected at t.
func (w *Window) Connected(p int32, t int64) bool {
	ivs, ok := w.Sessions[p]
	if !ok {
		return true
	}
	for _, iv := range ivs {
		if iv.From <= t && t < iv.To {
			return true
		}
	}
	return false
}

// Builder assembles a Window from receipts in any order. Feed it every receipt
// of [from−Horizon, to+Horizon): the receipts before from only tell which
// messages were already sighted, those after to complete the deliveries of
// messages first sighted just before to.
type Builder struct {
	from, to int64
	msgs     map[int64]*pending
	gossip   map[int64]Gossip
	sessions map[int32][]Interval
}

type pending struct {
	typ   uint16
	size  int32
	deliv []rawDelivery
}

type rawDelivery struct {
	at   int64
	peer int32
}

// NewBuilder returns a Builder for the window [from, to) in Unix µs.
func NewBuilder(from, to int64) *Builder {
	return &Builder{from: from, to: to, msgs: make(map[int64]*pending), gossip: make(map[int64]Gossip), sessions: make(map[int32][]Interval)}
}

// Add records a receipt.
func (b *Builder) Add(r Receipt) {
	m := b.msgs[r.Hash]
	if m == nil {
		m = &pending{typ: r.Type, size: r.Size}
		b.msgs[r.Hash] = m
	}
	m.deliv = append(m.deliv, rawDelivery{at: r.At, peer: r.Peer})
}

// AddGossip links the gossip fields g to the message with hash h.
func (b *Builder) AddGossip(h int64, g Gossip) { b.gossip[h] = g }

// AddSession records a connection interval of peer p.
func (b *Builder) AddSession(p int32, iv Interval) {
	b.sessions[p] = append(b.sessions[p], iv)
}

// Window returns the assembled window. The Builder must not be used again.
func (b *Builder) Window() *Window {
	w := &Window{From: b.from, To: b.to, Sessions: b.sessions}
	peers := make(map[int32]bool)
	for p, ivs := range b.sessions {
		for _, iv := range ivs {
			if iv.From < b.to && iv.To > b.from {
				peers[p] = true
			}
		}
		slices.SortFunc(ivs, func(a, b Interval) int { return cmp.Compare(a.From, b.From) })
	}
	horizon := Horizon.Microseconds()
	seen := make(map[int32]bool)
	for h, m := range b.msgs {
		slices.SortFunc(m.deliv, func(a, b rawDelivery) int {
			return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.peer, b.peer))
		})
		first := m.deliv[0].at
		if first < b.from || first >= b.to {
			continue
		}
		msg := Message{Hash: h, Type: m.typ, Size: m.size, First: first}
		msg.Deliveries = make([]Delivery, 0, len(m.deliv))
		clear(seen)
		for _, d := range m.deliv {
			if d.at-first >= horizon {
				break
			}
			if seen[d.peer] {
				continue // a peer's first delivery only
			}
			seen[d.peer] = true
			peers[d.peer] = true
			msg.Deliveries = append(msg.Deliveries, Delivery{Peer: d.peer, Delay: uint32(d.at - first)})
		}
		if g, ok := b.gossip[h]; ok {
			msg.Gossip = &g
		}
		w.Messages = append(w.Messages, msg)
	}
	slices.SortFunc(w.Messages, func(a, b Message) int {
		return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Hash, b.Hash))
	})
	for p := range peers {
		w.Peers = append(w.Peers, p)
	}
	slices.Sort(w.Peers)
	b.msgs = nil
	return w
}
