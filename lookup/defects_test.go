package lookup_test

import (
	"context"
	"testing"
	"time"

	"github.com/lnsync/lnsync/conformance"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/rgs"
)

// TestUnknownChannelFlagBitsAreNotForwarded covers the reference server's
// copying of the whole channel_flags byte into the RGS flag byte: only the
// direction and disable bits may reach the file.
func TestUnknownChannelFlagBitsAreNotForwarded(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 30)
	base := quiet.Add(-day)
	f.announce(id, 1, 2, base)
	for dir := range uint8(2) {
		f.submit(&persistence.ChannelUpdate{SCID: id, Direction: dir, Timestamp: uint32(base.Unix()), MessageFlags: 1,
			ChannelFlags:    0xfe | dir, // disabled, and every unknown bit set CLTVExpiryDelta: 40, HTLCMinimumMsat: 1, FeeBaseMsat: 1, FeeProportionalMillionths: 1,
			HTLCMaximumMsat: 1000, Signed: []byte{dir, 0xfe}, ReceivedAt: base})
	}
	d, _ := f.delta(time.Time{}, quiet)
	b, err := d.Encode(rgs.Version1)
	if err != nil {
		t.Fatal(err)
	}
	file, err := rgs.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range file.Updates {
		// 0xfe forwarded would read as "incremental, every field changed, disabled":
		// a full update with every value at its default is just the two low bits.
		if u.Flags&0x80 != 0 || !u.Disabled || u.Flags&0x01 != u.Direction {
			t.Errorf("update flags %#x: want a full update with the direction and disable bits", u.Flags)
		}
	}
}

// TestNodeOnlyDeltaIsAccepted covers the client's early return on a file with
// no channel updates: a version 2 delta carrying only node data must still be
// accepted, and applied.
func TestNodeOnlyDeltaIsAccepted(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 31)
	last := quiet.Add(-3 * hour)
	before := last.Add(-day)
	f.announce(id, 1, 2, before)
	f.update(id, upd{dir: 0, ts: before, seen: before})
	f.update(id, upd{dir: 1, ts: before, seen: before})
	f.node(1, before, before, []byte{0x02}, ipv4(1, 1, 1, 1, 9735))
	f.node(1, last.Add(hour), last.Add(hour), []byte{0x02}, ipv4(2, 2, 2, 2, 9735))
	first, _ := f.delta(time.Time{}, last)
	next, st := f.delta(last, quiet)
	if len(next.Updates) != 0 || st.NodesMutated != 1 {
		t.Fatalf("want a node-only delta, got %d updates, stats %+v", len(next.Updates), st)
	}
	var files [][]byte
	for _, d := range []*rgs.Delta{first, next} {
		b, err := d.Encode(rgs.Version2)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	g, err := conformance.ApplyLDK(context.Background(), conformance.Mainnet, files, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range g.Results {
		if !r.OK {
			t.Fatalf("file %d rejected: %s", i, r.Error)
		}
	}
	for _, n := range g.Nodes {
		if n.NodeID == nodeID(1) {
			if n.Announcement == nil || len(n.Announcement.Addresses) != 1 || n.Announcement.Addresses[0].String() != "2.2.2.2:9735" {
				t.Errorf("node 1 holds %+v, want the new address", n.Announcement)
			}
			return
		}
	}
	t.Errorf("node 1 missing from the client graph")
}
