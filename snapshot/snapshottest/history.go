package snapshottest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/rgs"
)

// HistoryConfig shapes a generated gossip history.
type HistoryConfig struct {
	Channels int
	Nodes    int
	// From and To bound the receive times. Most channels are announced at
	// From; NewShare of them at a random time before To.
	From, To time.Time
	NewShare float64
	// UpdateEvery is the mean time between two updates of one channel
	// direction (zero: no updates beyond the first); every direction also
	// gets an update in the last KeepAlive (zero: one day) before To, so none
	// goes stale.
	UpdateEvery time.Duration
	KeepAlive   time.Duration
	Seed        uint64
}

// History is a deterministic, plausible gossip history: channels between
// valid node keys (node_id_1 < node_id_2), channel updates that change fees,
// limits and the disable bit, and node announcements with IPv4 addresses that
// sometimes change. Receive time and gossip timestamp agree to the second.
type History struct {
	Records []persistence.Record // in receive order
}

// GenerateHistory builds a History from cfg.
func GenerateHistory(cfg HistoryConfig) *History {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 24 * time.Hour
	}
	if cfg.UpdateEvery <= 0 {
		cfg.UpdateEvery = cfg.To.Sub(cfg.From)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6c6e73796e63))
	keys := Keys(cfg.Nodes)
	span := cfg.To.Sub(cfg.From)
	at := func(d time.Duration) time.Time { return cfg.From.Add(d).Truncate(time.Second) }
	var recs []persistence.Record
	nodeFirst := map[int]time.Time{}
	for i := range cfg.Channels {
		a, b := rng.IntN(cfg.Nodes), rng.IntN(cfg.Nodes-1)
		if b >= a {
			b++
		}
		if a > b {
			a, b = b, a
		}
		scid := uint64(700_000+i/16)<<40 | uint64(i%16)<<16 | uint64(i%2)
		opened := at(time.Duration(rng.Int64N(int64(time.Minute))))
		if rng.Float64() < cfg.NewShare {
			opened = at(time.Duration(rng.Int64N(int64(span - time.Hour))))
		}
		for _, n := range []int{a, b} {
			if t, ok := nodeFirst[n]; !ok || opened.Before(t) {
				nodeFirst[n] = opened
			}
		}
		recs = append(recs, &persistence.ChannelAnnouncement{
			SCID: scid, NodeID1: keys[a], NodeID2: keys[b], Features: []byte{},
			FundingSats: uint64(100_000 + rng.IntN(50_000_000)), FundingKnown: true,
			Signed: signed("ca", scid), ReceivedAt: opened,
		})
		for dir := range uint8(2) {
			u := persistence.ChannelUpdate{
				SCID: scid, Direction: dir, MessageFlags: 1, ChannelFlags: dir,
				CLTVExpiryDelta: []uint16{40, 80, 144}[rng.IntN(3)], HTLCMinimumMsat: []uint64{1, 1000}[rng.IntN(2)],
				FeeBaseMsat: uint32(rng.IntN(2000)), FeeProportionalMillionths: uint32(rng.IntN(1000)),
				HTLCMaximumMsat: uint64(1+rng.IntN(1000)) * 1_000_000,
			}
			first := opened.Add(time.Duration(1+rng.IntN(600)) * time.Second)
			times := []time.Time{first}
			if n := int(span / cfg.UpdateEvery); n > 0 && cfg.To.After(first) {
				for range rng.IntN(2*n + 1) {
					times = append(times, first.Add(time.Duration(rng.Int64N(int64(cfg.To.Sub(first))))).Truncate(time.Second))
				}
			}
			if t := cfg.To.Add(-time.Duration(1 + rng.Int64N(int64(cfg.KeepAlive)))).Truncate(time.Second); t.After(first) {
				times = append(times, t)
			}
			slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
			last := time.Time{}
			for k, t := range times {
				if !t.After(last) {
					t = last.Add(time.Second)
				}
				if !t.Before(cfg.To) {
					break
				}
				last = t
				if k > 0 {
					switch rng.IntN(4) {
					case 0:
						u.FeeBaseMsat = uint32(rng.IntN(2000))
					case 1:
						u.FeeProportionalMillionths = uint32(rng.IntN(1000))
					case 2:
						u.ChannelFlags ^= 2 // toggle disabled
					}
					if rng.IntN(10) == 0 {
						u.CLTVExpiryDelta = []uint16{40, 80, 144}[rng.IntN(3)]
					}
				}
				c := u
				c.Timestamp, c.ReceivedAt = uint32(t.Unix()), t
				c.Signed = signed("cu", scid, uint64(dir), uint64(t.Unix()))
				recs = append(recs, &c)
			}
		}
	}
	nodes := make([]int, 0, len(nodeFirst))
	for n := range nodeFirst {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	for _, n := range nodes {
		first := nodeFirst[n].Add(2 * time.Second)
		times := []time.Time{first}
		if rng.IntN(5) == 0 {
			if t := first.Add(time.Duration(rng.Int64N(int64(cfg.To.Sub(first))))).Truncate(time.Second); t.After(first) {
				times = append(times, t)
			}
		}
		for _, t := range times {
			if !t.Before(cfg.To) {
				continue
			}
			addr := []byte{1, 10, byte(n >> 8), byte(n), byte(rng.IntN(250) + 1), 0x26, 0x07}
			recs = append(recs, &persistence.NodeAnnouncement{
				NodeID: keys[n], Timestamp: uint32(t.Unix()), Features: []byte{0x08, 0xa0, 0x00},
				Addresses: addr, Signed: signed("na", uint64(n), uint64(t.Unix())), ReceivedAt: t,
			})
		}
	}
	sort.SliceStable(recs, func(i, j int) bool { return receivedAt(recs[i]).Before(receivedAt(recs[j])) })
	return &History{Records: recs}
}

func signed(kind string, parts ...uint64) []byte {
	b := []byte(kind)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint64(b, p)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:8]...)
}

func receivedAt(r persistence.Record) time.Time {
	switch r := r.(type) {
	case *persistence.ChannelAnnouncement:
		return r.ReceivedAt
	case *persistence.ChannelUpdate:
		return r.ReceivedAt
	case *persistence.NodeAnnouncement:
		return r.ReceivedAt
	}
	return time.Time{}
}

// Submit hands every record to w and waits until they are committed.
func (h *History) Submit(ctx context.Context, w *persistence.Writer) error {
	for _, r := range h.Records {
		if err := w.Submit(ctx, r); err != nil {
			return fmt.Errorf("submit: %w", err)
		}
	}
	return w.Flush(ctx)
}

// ChannelTruth is what a client should hold for one channel at a time.
type ChannelTruth struct {
	Announcement *persistence.ChannelAnnouncement
	Directions   [2]*persistence.ChannelUpdate
}

// Channels returns, as of at, every channel announced before at (node ids in
// order) whose two directions both have an update received before at, each
// direction's newest gossip timestamp not older than lookup.StaleAge, with
// the newest update of each direction: what a client that synced up to at
// must hold.
func (h *History) Channels(at time.Time) map[uint64]*ChannelTruth {
	out := map[uint64]*ChannelTruth{}
	for _, r := range h.Records {
		// Clients reject a whole file for node ids out of order: such
		// channels are never sent.
		if a, ok := r.(*persistence.ChannelAnnouncement); ok && a.ReceivedAt.Before(at) && bytes.Compare(a.NodeID1[:], a.NodeID2[:]) < 0 {
			out[a.SCID] = &ChannelTruth{Announcement: a}
		}
	}
	for _, r := range h.Records {
		u, ok := r.(*persistence.ChannelUpdate)
		if !ok || !u.ReceivedAt.Before(at) || out[u.SCID] == nil {
			continue
		}
		c := out[u.SCID]
		if d := c.Directions[u.Direction]; d == nil || u.Timestamp > d.Timestamp {
			c.Directions[u.Direction] = u
		}
	}
	stale := uint32(at.Add(-lookup.StaleAge).Unix())
	for scid, c := range out {
		d := c.Directions
		if d[0] == nil || d[1] == nil || d[0].Timestamp < stale || d[1].Timestamp < stale {
			delete(out, scid)
		}
	}
	return out
}

// NodeAddresses returns, as of at, the address descriptors of the newest
// announcement of every node, split into single addresses.
func (h *History) NodeAddresses(at time.Time) map[rgs.NodeID][]rgs.Address {
	newest := map[rgs.NodeID]*persistence.NodeAnnouncement{}
	for _, r := range h.Records {
		if n, ok := r.(*persistence.NodeAnnouncement); ok && n.ReceivedAt.Before(at) {
			if p := newest[n.NodeID]; p == nil || n.Timestamp > p.Timestamp {
				newest[n.NodeID] = n
			}
		}
	}
	out := map[rgs.NodeID][]rgs.Address{}
	for id, n := range newest {
		out[id] = rgs.SplitAddresses(n.Addresses)
	}
	return out
}

// ReadHistory reads every stored row back as a History whose receive times
// are the stored seen times: the stored truth, whatever filled the database.
func ReadHistory(ctx context.Context, store *persistence.Store) (*History, error) {
	h := &History{}
	_, _, err := store.ReadSince(ctx, persistence.Cursor{}, persistence.Visitor{
		Announcement: func(a *persistence.StoredAnnouncement) error {
			h.Records = append(h.Records, &persistence.ChannelAnnouncement{
				SCID: a.SCID, NodeID1: a.NodeID1, NodeID2: a.NodeID2, Features: a.Features,
				FundingSats: a.FundingSats, FundingKnown: a.FundingKnown, ReceivedAt: a.Seen,
			})
			return nil
		},
		Update: func(u *persistence.StoredUpdate) error {
			h.Records = append(h.Records, &persistence.ChannelUpdate{
				SCID: u.SCID, Direction: u.Direction, Timestamp: u.Timestamp, MessageFlags: u.MessageFlags,
				ChannelFlags: u.ChannelFlags, CLTVExpiryDelta: u.CLTVExpiryDelta, HTLCMinimumMsat: u.HTLCMinimumMsat,
				FeeBaseMsat: u.FeeBaseMsat, FeeProportionalMillionths: u.FeeProportionalMillionths,
				HTLCMaximumMsat: u.HTLCMaximumMsat, ReceivedAt: u.Seen,
			})
			return nil
		},
		Node: func(n *persistence.StoredNode) error {
			h.Records = append(h.Records, &persistence.NodeAnnouncement{
				NodeID: n.NodeID, Timestamp: n.Timestamp, Features: n.Features, Addresses: n.Addresses, ReceivedAt: n.Seen,
			})
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	sort.SliceStable(h.Records, func(i, j int) bool { return receivedAt(h.Records[i]).Before(receivedAt(h.Records[j])) })
	return h, nil
}
