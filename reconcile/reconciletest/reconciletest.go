// Package reconciletest generates synthetic receipts with known
// distributions for the reconcile package's tests and benchmarks: how many
// peers deliver each message, how long after the first sighting, and how long
// each peer holds messages back.
//
// The model: messages originate at exponentially spaced times. Peer 1 is the
// source and delivers every message at its origin, so the first sighting
// f(h) is the origin and every other delivery's lag is known exactly:
// r(h,p) − f(h) = HoldBack(p) + a draw of Delay. The other peers are chosen
// either by a peers-per-message distribution (uniformly among peers 2..n) or,
// when RelayProb is set, each independently with its own probability.
// Everything is a pure function of Config, seed included.
package reconciletest

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/reconcile"
)

// Config describes a synthetic data set. Zero fields take the defaults noted.
type Config struct {
	Seed     uint64
	Start    time.Time     // origin of the first message window; default 2026-01-01T00:00Z
	Duration time.Duration // span of message origins; default 1h
	Peers    int           // peer ids 1..Peers; default 10
	// PerMinute is the mean unique message rate; default 300 (mainnet 2025).
	PerMinute float64
	// TypeMix is the share of channel_announcement, node_announcement and
	// channel_update; default run 2's 9.6% / 30.05% / 60.35%.
	TypeMix [3]float64
	// PeersPerMessage draws how many peers deliver a message, the source
	// included (clamped to [1, Peers]); default Bimodal.
	PeersPerMessage func(r *rand.Rand) int
	// RelayProb, when set, replaces PeersPerMessage: peer p ≥ 2 delivers each
	// message with probability RelayProb(p).
	RelayProb func(peer int32) float64
	// Delay draws the lag of a non-source delivery before hold-back; default
	// uniform in [0, 300s). Draws must stay below one hour with the hold-back.
	Delay func(r *rand.Rand) time.Duration
	// HoldBack is peer p's constant hold-back δ_p; default 0.
	HoldBack func(peer int32) time.Duration
	// Offline is an interval during which a peer is disconnected and
	// delivers nothing; its sessions are recorded around it.
	Offline map[int32]reconcile.Interval
}

// Message is a generated message and its truth.
type Message struct {
	Hash   int64
	Type   uint16
	Size   int32
	Origin int64 // Unix µs; the first sighting
	Peers  int   // peers chosen to deliver it (source included)
}

// Dataset is a generated data set.
type Dataset struct {
	Receipts []reconcile.Receipt // sorted by time
	Messages []Message           // by origin
	// Sessions holds every peer's connection intervals, covering the data
	// set with an hour to spare on both sides except for Offline.
	Sessions map[int32][]reconcile.Interval
}

// Bimodal draws peers per message like gossip_observer's run 2 scaled to n
// peers: 16% of messages reach 1–5 peers, the rest spread over 6%–100% of n.
func Bimodal(n int) func(r *rand.Rand) int {
	return func(r *rand.Rand) int {
		if r.Float64() < 0.16 {
			return 1 + r.IntN(min(5, n))
		}
		lo := max(1, int(0.06*float64(n)))
		return lo + r.IntN(n-lo+1)
	}
}

// Generate builds the data set of cfg.
func Generate(cfg Config) *Dataset {
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Hour
	}
	if cfg.Peers <= 0 {
		cfg.Peers = 10
	}
	if cfg.PerMinute <= 0 {
		cfg.PerMinute = 300
	}
	if cfg.TypeMix == ([3]float64{}) {
		cfg.TypeMix = [3]float64{0.096, 0.3005, 0.6035}
	}
	if cfg.PeersPerMessage == nil {
		cfg.PeersPerMessage = Bimodal(cfg.Peers)
	}
	if cfg.Delay == nil {
		cfg.Delay = func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(300 * time.Second))) }
	}
	if cfg.HoldBack == nil {
		cfg.HoldBack = func(int32) time.Duration { return 0 }
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6c6e73796e63))
	ds := &Dataset{Sessions: make(map[int32][]reconcile.Interval)}
	start := cfg.Start.UnixMicro()
	end := start + cfg.Duration.Microseconds()
	meanGap := 60e6 / cfg.PerMinute
	others := make([]int32, 0, cfg.Peers)
	for p := 2; p <= cfg.Peers; p++ {
		others = append(others, int32(p))
	}
	offline := func(p int32, t int64) bool {
		iv, ok := cfg.Offline[p]
		return ok && iv.From <= t && t < iv.To
	}
	for t := start + int64(r.ExpFloat64()*meanGap); t < end; t += max(1, int64(r.ExpFloat64()*meanGap)) {
		m := Message{Hash: int64(r.Uint64()), Origin: t}
		switch u := r.Float64(); {
		case u < cfg.TypeMix[0]:
			m.Type, m.Size = reconcile.TypeChannelAnnouncement, 430+int32(r.IntN(8))
		case u < cfg.TypeMix[0]+cfg.TypeMix[1]:
			m.Type, m.Size = reconcile.TypeNodeAnnouncement, 150+int32(r.IntN(300))
		default:
			m.Type, m.Size = reconcile.TypeChannelUpdate, 138
		}
		var chosen []int32
		if cfg.RelayProb != nil {
			for _, p := range others {
				if r.Float64() < cfg.RelayProb(p) {
					chosen = append(chosen, p)
				}
			}
		} else {
			k := min(max(cfg.PeersPerMessage(r), 1), cfg.Peers)
			// Partial Fisher–Yates: the first k−1 of a shuffled copy.
			for i := 0; i < k-1; i++ {
				j := i + r.IntN(len(others)-i)
				others[i], others[j] = others[j], others[i]
			}
			chosen = append(chosen, others[:k-1]...)
		}
		m.Peers = 1 + len(chosen)
		if !offline(1, t) {
			ds.Receipts = append(ds.Receipts, reconcile.Receipt{At: t, Peer: 1, Hash: m.Hash, Type: m.Type, Size: m.Size})
		}
		for _, p := range chosen {
			at := t + (cfg.HoldBack(p) + cfg.Delay(r)).Microseconds()
			if offline(p, at) {
				m.Peers--
				continue
			}
			ds.Receipts = append(ds.Receipts, reconcile.Receipt{At: at, Peer: p, Hash: m.Hash, Type: m.Type, Size: m.Size})
		}
		ds.Messages = append(ds.Messages, m)
	}
	slices.SortFunc(ds.Receipts, func(a, b reconcile.Receipt) int {
		return cmp.Or(cmp.Compare(a.At, b.At), cmp.Compare(a.Peer, b.Peer))
	})
	span := reconcile.Interval{From: start - 2*time.Hour.Microseconds(), To: end + 3*time.Hour.Microseconds()}
	for p := int32(1); p <= int32(cfg.Peers); p++ {
		if iv, ok := cfg.Offline[p]; ok {
			ds.Sessions[p] = []reconcile.Interval{{From: span.From, To: iv.From}, {From: iv.To, To: span.To}}
			continue
		}
		ds.Sessions[p] = []reconcile.Interval{span}
	}
	return ds
}

// Window builds the reconcile window [from, to) of the data set, sessions
// included, as the loader would from the database.
func (ds *Dataset) Window(from, to time.Time) *reconcile.Window {
	b := reconcile.NewBuilder(from.UnixMicro(), to.UnixMicro())
	lo, hi := from.Add(-reconcile.Horizon).UnixMicro(), to.Add(reconcile.Horizon).UnixMicro()
	for _, r := range ds.Receipts {
		if r.At >= lo && r.At < hi {
			b.Add(r)
		}
	}
	for p, ivs := range ds.Sessions {
		for _, iv := range ivs {
			b.AddSession(p, iv)
		}
	}
	return b.Window()
}

// PersistenceReceipts returns the receipts as Writer records.
func (ds *Dataset) PersistenceReceipts() []*persistence.Receipt {
	out := make([]*persistence.Receipt, len(ds.Receipts))
	for i, r := range ds.Receipts {
		out[i] = &persistence.Receipt{ReceivedAt: time.UnixMicro(r.At).UTC(), PeerID: r.Peer, MsgHash: r.Hash, MsgType: r.Type, Size: r.Size}
	}
	return out
}
