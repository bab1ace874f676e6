package lookup_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/rgs"
)

// epoch is the reference time of most scenarios: on the 3-hour grid and on a
// reminder boundary.
var epoch = time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

// fixture stores gossip with chosen seen times and computes deltas from it.
type fixture struct {
	t     *testing.T
	store *persistence.Store
	w     *persistence.Writer
	index *lookup.Index
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, false)
}

// newFixtureWith returns a fixture whose rows are marked imported when
// imported is set (as lnsync import stores them).
func newFixtureWith(t *testing.T, imported bool) *fixture {
	t.Helper()
	store := persistencetest.NewStore(t)
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, Imported: imported, FlushInterval: time.Millisecond}, persistencetest.Logger(t))
	w.Start(context.Background())
	t.Cleanup(w.Stop)
	return &fixture{t: t, store: store, w: w, index: lookup.NewIndex(store, rgs.ChainMainnet, persistencetest.Logger(t))}
}

// keys are 256 valid node keys in ascending byte order, so that nodeID(a) <
// nodeID(b) whenever a < b.
var keys = func() []rgs.NodeID {
	out := make([]rgs.NodeID, 256)
	for i := range out {
		var secret [32]byte
		secret[31] = byte(i)
		secret[0] = 1
		_, pub := btcec.PrivKeyFromBytes(secret[:])
		copy(out[i][:], pub.SerializeCompressed())
	}
	slices.SortFunc(out, func(a, b rgs.NodeID) int { return bytes.Compare(a[:], b[:]) })
	return out
}()

func nodeID(b byte) rgs.NodeID { return keys[b] }

func scid(height uint64, tx uint64) uint64 { return height<<40 | tx<<16 }

// with returns the fixture reporting to t (for subtests).
func (f *fixture) with(t *testing.T) *fixture {
	c := *f
	c.t = t
	return &c
}

func (f *fixture) submit(r persistence.Record) {
	f.t.Helper()
	if err := f.w.Submit(context.Background(), r); err != nil {
		f.t.Fatal(err)
	}
}

// announce stores a channel between node ids a < b seen at seen.
func (f *fixture) announce(id uint64, a, b byte, seen time.Time) {
	ann := &persistence.ChannelAnnouncement{SCID: id, NodeID1: nodeID(a), NodeID2: nodeID(b), Features: []byte{},
		Signed: []byte{byte(id >> 40), byte(id >> 16), a, b}, ReceivedAt: seen}
	f.submit(ann)
}

type upd struct {
	dir      uint8
	ts       time.Time // gossip timestamp
	seen     time.Time
	fee      uint32
	ppm      uint32
	cltv     uint16
	htlcMin  uint64
	htlcMax  uint64
	disabled bool
}

func (f *fixture) update(id uint64, u upd) {
	flags := u.dir
	if u.disabled {
		flags |= 2
	}
	cltv := u.cltv
	if cltv == 0 {
		cltv = 40
	}
	if u.htlcMin == 0 {
		u.htlcMin = 1000
	}
	if u.htlcMax == 0 {
		u.htlcMax = 990_000_000
	}
	f.submit(&persistence.ChannelUpdate{
		SCID: id, Direction: u.dir, Timestamp: uint32(u.ts.Unix()), MessageFlags: 1, ChannelFlags: flags,
		CLTVExpiryDelta: cltv, HTLCMinimumMsat: u.htlcMin, FeeBaseMsat: u.fee, FeeProportionalMillionths: u.ppm,
		HTLCMaximumMsat: u.htlcMax, Signed: []byte{byte(id >> 40), u.dir, byte(u.ts.Unix()), byte(u.ts.Unix() >> 8), byte(u.seen.Unix())},
		ReceivedAt: u.seen,
	})
}

func (f *fixture) node(id byte, ts, seen time.Time, features []byte, addrs ...[]byte) {
	var raw []byte
	for _, a := range addrs {
		raw = append(raw, a...)
	}
	f.submit(&persistence.NodeAnnouncement{NodeID: nodeID(id), Timestamp: uint32(ts.Unix()), Features: features,
		Addresses: raw, Signed: []byte{id, byte(ts.Unix()), byte(ts.Unix() >> 8)}, ReceivedAt: seen})
}

// delta flushes what was stored and computes the delta for (last, ref).
func (f *fixture) delta(last, ref time.Time) (*rgs.Delta, lookup.DeltaStats) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.w.Flush(ctx); err != nil {
		f.t.Fatal(err)
	}
	if err := f.index.CatchUp(ctx, ref); err != nil {
		f.t.Fatal(err)
	}
	d, st, err := f.index.Delta(last, ref)
	if err != nil {
		f.t.Fatal(err)
	}
	// Every delta must encode in both versions and decode back to itself.
	for _, v := range []int{rgs.Version1, rgs.Version2} {
		b, err := d.Encode(v)
		if err != nil {
			f.t.Fatalf("encode v%d: %v", v, err)
		}
		if _, err := rgs.Decode(b); err != nil {
			f.t.Fatalf("decode v%d: %v", v, err)
		}
	}
	return d, st
}

func ipv4(a, b, c, d byte, port uint16) []byte {
	return []byte{1, a, b, c, d, byte(port >> 8), byte(port)}
}

func findUpdate(d *rgs.Delta, id uint64, dir uint8) *rgs.Update {
	for i := range d.Updates {
		if d.Updates[i].SCID == id && d.Updates[i].Direction == dir {
			return &d.Updates[i]
		}
	}
	return nil
}

func findNode(d *rgs.Delta, id rgs.NodeID) *rgs.NodeDelta {
	for i := range d.Nodes {
		if d.Nodes[i].NodeID == id {
			return &d.Nodes[i]
		}
	}
	return nil
}
