package lookup_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/lnsync/lnsync/rgs"
)

// quiet is a reference time whose 3-hour window holds no reminder due time,
// so scenarios about changes are not mixed with reminders.
var quiet = epoch.Add(3 * hour)

func TestEmptyDatabaseGivesEmptyDeltaStampedWithReference(t *testing.T) {
	f := newFixture(t)
	for _, last := range []time.Time{{}, quiet.Add(-3 * hour)} {
		d, _ := f.delta(last, quiet)
		if len(d.Announcements)+len(d.Updates)+len(d.Nodes) != 0 {
			t.Errorf("L=%v: delta not empty: %+v", last, d)
		}
		if d.Timestamp != uint32(quiet.Unix()) {
			t.Errorf("header = %d, want the reference time %d", d.Timestamp, quiet.Unix())
		}
	}
}

func TestTrivialSetup(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 1)
	f.announce(id, 1, 2, quiet.Add(-2*day))
	f.update(id, upd{dir: 0, ts: quiet.Add(-2 * day), seen: quiet.Add(-2 * day), fee: 1, ppm: 10})
	f.update(id, upd{dir: 1, ts: quiet.Add(-2 * day), seen: quiet.Add(-2 * day), fee: 2, ppm: 20})
	d, st := f.delta(time.Time{}, quiet)
	if len(d.Announcements) != 1 || d.Announcements[0].SCID != id {
		t.Fatalf("announcements = %+v", d.Announcements)
	}
	if len(d.Updates) != 2 || st.Full != 2 {
		t.Fatalf("updates = %+v, stats %+v", d.Updates, st)
	}
	if u := findUpdate(d, id, 1); u.Kind != rgs.Full || u.Policy.FeeBaseMsat != 2 || u.Policy.FeeProportionalMillionths != 20 {
		t.Errorf("direction 1 = %+v", u)
	}
	if d.Timestamp != uint32(quiet.Unix()) || d.Timestamp%(3*3600) != 0 {
		t.Errorf("header %d not the reference time on the grid", d.Timestamp)
	}
}

func TestUnidirectionalIntermediateUpdate(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 2)
	last := quiet.Add(-3 * hour)
	f.announce(id, 1, 2, last.Add(-day))
	f.update(id, upd{dir: 0, ts: last.Add(-day), seen: last.Add(-day), fee: 5})
	// The second direction is first seen after the client's last sync: the
	// channel only now becomes usable, so it is announced with both directions.
	f.update(id, upd{dir: 1, ts: last.Add(hour), seen: last.Add(hour), fee: 6})
	d, st := f.delta(last, quiet)
	if len(d.Announcements) != 1 || st.Full != 2 || len(d.Updates) != 2 {
		t.Fatalf("got %d announcements, stats %+v", len(d.Announcements), st)
	}
	if u := findUpdate(d, id, 0); u.Kind != rgs.Full || u.Policy.FeeBaseMsat != 5 {
		t.Errorf("pre-L direction sent as %+v, want full with fee 5", u)
	}
}

func TestBidirectionalIntermediateUpdate(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 3)
	last := quiet.Add(-3 * hour)
	f.announce(id, 1, 2, last.Add(-day))
	f.update(id, upd{dir: 0, ts: last.Add(-day), seen: last.Add(-day), fee: 5, ppm: 50})
	f.update(id, upd{dir: 1, ts: last.Add(-day), seen: last.Add(-day), fee: 6, ppm: 60})
	f.update(id, upd{dir: 0, ts: last.Add(hour), seen: last.Add(hour), fee: 7, ppm: 50})
	d, st := f.delta(last, quiet)
	if len(d.Announcements) != 0 || len(d.Updates) != 1 || st.Incremental != 1 {
		t.Fatalf("announcements %d, updates %+v", len(d.Announcements), d.Updates)
	}
	u := d.Updates[0]
	if u.Kind != rgs.Incremental || u.Changed != rgs.FieldFeeBaseMsat || u.Policy.FeeBaseMsat != 7 {
		t.Errorf("update = %+v, want incremental fee_base 7 only", u)
	}
}

// TestNewestTimestampWins covers the reference server's recency scenarios
// (issue #61, "mutiny"): the value served is the one with the highest gossip
// timestamp, whatever order updates were seen or stored in.
func TestNewestTimestampWins(t *testing.T) {
	id := scid(800000, 4)
	last := quiet.Add(-3 * hour)
	t1, t2, t3 := last.Add(-2*day), last.Add(-day), last.Add(-day+time.Minute)
	tests := []struct {
		name    string
		updates []upd // dir 0; direction 1 is fixed
		wantPPM uint32
	}{
		{"in order", []upd{{ts: t1, seen: t1, ppm: 100}, {ts: t2, seen: t2, ppm: 120}, {ts: t3, seen: t3, ppm: 130}}, 130},
		{"newest seen first", []upd{{ts: t3, seen: t1, ppm: 130}, {ts: t1, seen: t2, ppm: 100}, {ts: t2, seen: t3, ppm: 120}}, 130},
		{"older arrives after newer", []upd{{ts: t1, seen: t1, ppm: 100}, {ts: t3, seen: t2, ppm: 130}, {ts: t2, seen: last.Add(time.Hour), ppm: 120}}, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.announce(id, 1, 2, t1)
			f.update(id, upd{dir: 1, ts: t1, seen: t1, ppm: 1})
			for _, u := range tt.updates {
				f.update(id, u)
			}
			full, _ := f.delta(time.Time{}, quiet)
			if u := findUpdate(full, id, 0); u == nil || u.Policy.FeeProportionalMillionths != tt.wantPPM {
				t.Errorf("full delta direction 0 = %+v, want ppm %d", u, tt.wantPPM)
			}
			// A client at L already holds the newest version: an older update
			// stored after L must not be sent as a change.
			inc, _ := f.delta(last, quiet)
			if u := findUpdate(inc, id, 0); u != nil && u.Policy.FeeProportionalMillionths != tt.wantPPM {
				t.Errorf("incremental delta sent %+v, want nothing or ppm %d", u, tt.wantPPM)
			}
		})
	}
}

func TestInterlacedChannelTimestamps(t *testing.T) {
	f := newFixture(t)
	a, b := scid(800000, 5), scid(800000, 6)
	base := quiet.Add(-2 * day)
	f.announce(a, 1, 2, base)
	f.announce(b, 3, 4, base)
	for i := range 6 {
		ts := base.Add(time.Duration(i) * time.Minute)
		id := a
		if i%2 == 1 {
			id = b
		}
		f.update(id, upd{dir: 0, ts: ts, seen: ts, ppm: uint32(i)})
		f.update(id, upd{dir: 1, ts: ts, seen: ts, ppm: uint32(10 + i)})
	}
	d, _ := f.delta(time.Time{}, quiet)
	if u := findUpdate(d, a, 0); u.Policy.FeeProportionalMillionths != 4 {
		t.Errorf("channel a ppm %d, want 4", u.Policy.FeeProportionalMillionths)
	}
	if u := findUpdate(d, b, 1); u.Policy.FeeProportionalMillionths != 15 {
		t.Errorf("channel b direction 1 ppm %d, want 15", u.Policy.FeeProportionalMillionths)
	}
}

func TestOldReferenceIsSentFull(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 7)
	long := quiet.Add(-7 * day)
	last := quiet.Add(-3 * hour)
	f.announce(id, 1, 2, long)
	f.update(id, upd{dir: 0, ts: long, seen: long, fee: 1, ppm: 1})
	f.update(id, upd{dir: 1, ts: long, seen: long, fee: 1, ppm: 1})
	f.update(id, upd{dir: 0, ts: last.Add(hour), seen: last.Add(hour), fee: 2, ppm: 1})
	d, _ := f.delta(last, quiet)
	if u := findUpdate(d, id, 0); u == nil || u.Kind != rgs.Full {
		t.Errorf("change over a 7-day-old reference sent as %+v, want full", u)
	}
}

func TestEveryFieldChangedIsSentFull(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 8)
	last := quiet.Add(-3 * hour)
	f.announce(id, 1, 2, last.Add(-day))
	f.update(id, upd{dir: 0, ts: last.Add(-day), seen: last.Add(-day), fee: 1, ppm: 1, cltv: 40})
	f.update(id, upd{dir: 1, ts: last.Add(-day), seen: last.Add(-day), fee: 1, ppm: 1})
	f.update(id, upd{dir: 0, ts: last.Add(hour), seen: last.Add(hour), fee: 2, ppm: 2, cltv: 80, htlcMin: 5000, htlcMax: 5_000_000})
	d, _ := f.delta(last, quiet)
	u := findUpdate(d, id, 0)
	if u == nil || u.Kind != rgs.Full || u.Policy.HTLCMaximumMsat != 5_000_000 || u.Policy.CLTVExpiryDelta != 80 {
		t.Errorf("update = %+v, want a full update", u)
	}
}

func TestDisableIsAlwaysSent(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 9)
	last := quiet.Add(-3 * hour)
	f.announce(id, 1, 2, last.Add(-day))
	f.update(id, upd{dir: 0, ts: last.Add(-day), seen: last.Add(-day), fee: 1})
	f.update(id, upd{dir: 1, ts: last.Add(-day), seen: last.Add(-day), fee: 1})
	f.update(id, upd{dir: 1, ts: last.Add(hour), seen: last.Add(hour), fee: 1, disabled: true})
	d, _ := f.delta(last, quiet)
	u := findUpdate(d, id, 1)
	if u == nil || !u.Disabled || u.Kind != rgs.Incremental || u.Changed != 0 {
		t.Fatalf("update = %+v, want an incremental carrying only the disable bit", u)
	}
	if findUpdate(d, id, 0) != nil {
		t.Errorf("unchanged direction 0 was sent")
	}
}

func TestMisorderedChannelIsNeverSent(t *testing.T) {
	f := newFixture(t)
	good, bad := scid(800000, 10), scid(800000, 11)
	base := quiet.Add(-day)
	f.announce(good, 1, 2, base)
	f.announce(bad, 4, 3, base) // node_id_1 > node_id_2
	for _, id := range []uint64{good, bad} {
		f.update(id, upd{dir: 0, ts: base, seen: base})
		f.update(id, upd{dir: 1, ts: base, seen: base})
	}
	d, st := f.delta(time.Time{}, quiet)
	if len(d.Announcements) != 1 || d.Announcements[0].SCID != good || st.MisorderedChannels != 1 {
		t.Errorf("announcements %+v, stats %+v; want only the well-ordered channel", d.Announcements, st)
	}
}

func TestStaleChannelsLeaveAndReturnAnnounced(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 12)
	old := quiet.Add(-20 * day)
	last := quiet.Add(-3 * hour)
	f.announce(id, 1, 2, old)
	f.update(id, upd{dir: 0, ts: old, seen: old})
	f.update(id, upd{dir: 1, ts: old.Add(5 * day), seen: old.Add(5 * day)})
	d, st := f.delta(time.Time{}, last)
	if len(d.Announcements) != 0 || st.StaleChannels != 1 {
		t.Fatalf("stale channel served: %+v (stats %+v)", d.Announcements, st)
	}
	// A fresh update revives it: clients pruned it, so it is announced again.
	f.update(id, upd{dir: 0, ts: last.Add(hour), seen: last.Add(hour), fee: 9})
	f.update(id, upd{dir: 1, ts: last.Add(hour), seen: last.Add(hour), fee: 9})
	d, _ = f.delta(last, quiet)
	if len(d.Announcements) != 1 || len(d.Updates) != 2 || d.Updates[0].Kind != rgs.Full {
		t.Errorf("revived channel: announcements %d, updates %+v", len(d.Announcements), d.Updates)
	}
}

func TestUnannouncedChannelsAreNotSent(t *testing.T) {
	f := newFixture(t)
	base := quiet.Add(-day)
	notYet := scid(800000, 14)
	f.announce(notYet, 1, 3, quiet.Add(time.Minute)) // stored after C
	f.update(notYet, upd{dir: 0, ts: base, seen: base})
	f.update(notYet, upd{dir: 1, ts: base, seen: base})
	orphan := scid(800000, 15) // updates, never an announcement
	f.update(orphan, upd{dir: 0, ts: base, seen: base})
	f.update(orphan, upd{dir: 1, ts: base, seen: base})
	d, _ := f.delta(time.Time{}, quiet)
	if len(d.Announcements) != 0 || len(d.Updates) != 0 {
		t.Errorf("delta holds %+v / %+v", d.Announcements, d.Updates)
	}
}

// A channel with one live direction is served with that direction alone,
// so that its nodes reach the client; its other direction is sent in full
// when it arrives.
func TestHalfChannelsAreSentWithTheirOneDirection(t *testing.T) {
	f := newFixture(t)
	base := quiet.Add(-day)
	half := scid(800000, 13)
	f.announce(half, 1, 2, base)
	f.update(half, upd{dir: 1, ts: base, seen: base, fee: 7})
	f.node(2, base, base, []byte{0x02, 0x20}, ipv4(10, 0, 0, 2, 9735))
	last := quiet.Add(-3 * hour)
	d, st := f.delta(time.Time{}, last)
	if len(d.Announcements) != 1 || len(d.Updates) != 1 || d.Updates[0].Direction != 1 || d.Updates[0].Kind != rgs.Full || st.HalfChannels != 1 {
		t.Fatalf("full delta: announcements %+v, updates %+v, stats %+v", d.Announcements, d.Updates, st)
	}
	if len(d.Nodes) != 1 || d.Nodes[0].NodeID != nodeID(2) {
		t.Errorf("node of the half channel not sent: %+v", d.Nodes)
	}
	// Three hours later nothing changed: nothing to send.
	if d, _ := f.delta(last, quiet); len(d.Announcements)+len(d.Updates) != 0 {
		t.Errorf("unchanged half channel sent again: %+v / %+v", d.Announcements, d.Updates)
	}
	// The other direction arrives: the channel is whole now, announced again
	// (a client that pruned it gets it back) with both directions in full.
	f.update(half, upd{dir: 0, ts: quiet.Add(-hour), seen: quiet.Add(-hour), fee: 8})
	d, st = f.delta(last, quiet)
	if len(d.Announcements) != 1 || len(d.Updates) != 2 || d.Updates[0].Kind != rgs.Full || d.Updates[1].Kind != rgs.Full || st.HalfChannels != 0 {
		t.Errorf("completed channel: announcements %+v, updates %+v, stats %+v", d.Announcements, d.Updates, st)
	}
}

func TestNodeDeltas(t *testing.T) {
	f := newFixture(t)
	last := quiet.Add(-3 * hour)
	before, after := last.Add(-day), last.Add(time.Hour)
	id := scid(800000, 15)
	f.announce(id, 1, 2, before)
	f.update(id, upd{dir: 0, ts: before, seen: before})
	f.update(id, upd{dir: 1, ts: before, seen: before})
	id2 := scid(800000, 16)
	f.announce(id2, 2, 3, before)
	f.update(id2, upd{dir: 0, ts: before, seen: before})
	f.update(id2, upd{dir: 1, ts: before, seen: before})
	feat := []byte{0x0a, 0x69, 0xa2}
	// Node 1: new addresses after L. Node 2: unchanged. Node 3: first announced after L.
	// Node 9: announced, but has no channel.
	f.node(1, before, before, feat, ipv4(1, 2, 3, 4, 9735))
	f.node(1, after, after, feat, ipv4(1, 2, 3, 4, 9735), ipv4(5, 6, 7, 8, 9735))
	f.node(2, before, before, feat, ipv4(9, 9, 9, 9, 9735))
	f.node(3, after, after, []byte{0x08}, ipv4(7, 7, 7, 7, 1))
	f.node(9, after, after, feat, ipv4(6, 6, 6, 6, 1))
	d, st := f.delta(last, quiet)
	n1 := findNode(d, nodeID(1))
	if n1 == nil || !n1.HasAddresses || n1.HasFeatures || len(n1.Addresses) != 2 {
		t.Errorf("node 1 = %+v, want changed addresses only", n1)
	}
	if n := findNode(d, nodeID(2)); n != nil {
		t.Errorf("unchanged node 2 sent: %+v", n)
	}
	n3 := findNode(d, nodeID(3))
	if n3 == nil || !n3.HasAddresses || !n3.HasFeatures || !bytes.Equal(n3.Features, []byte{0x08}) {
		t.Errorf("node 3 = %+v, want whole data", n3)
	}
	if n := findNode(d, nodeID(9)); n != nil {
		t.Errorf("node without channel sent: %+v", n)
	}
	if st.NodesFull != 1 || st.NodesMutated != 1 {
		t.Errorf("stats %+v", st)
	}
	// The same delta in version 1 carries no node data.
	b, err := d.Encode(rgs.Version1)
	if err != nil {
		t.Fatal(err)
	}
	file, err := rgs.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := file.Delta(); len(got.Nodes) != 0 {
		t.Errorf("v1 file carries node data: %+v", got.Nodes)
	}
}

func TestSameHistorySameBytes(t *testing.T) {
	f := newFixture(t)
	base := quiet.Add(-2 * day)
	for i := range 50 {
		id := scid(800000+uint64(i%7), uint64(i))
		f.announce(id, byte(1+i%5), byte(10+i%9), base)
		f.update(id, upd{dir: 0, ts: base, seen: base, fee: uint32(i % 3), ppm: uint32(i)})
		f.update(id, upd{dir: 1, ts: base, seen: base, fee: uint32(i % 4), ppm: uint32(2 * i)})
		f.node(byte(1+i%5), base, base, []byte{0x02, byte(i % 3)}, ipv4(1, 1, 1, byte(i), 9735))
	}
	d1, _ := f.delta(time.Time{}, quiet)
	d2, _ := f.delta(time.Time{}, quiet)
	for _, v := range []int{rgs.Version1, rgs.Version2} {
		b1, _ := d1.Encode(v)
		b2, _ := d2.Encode(v)
		if !bytes.Equal(b1, b2) {
			t.Errorf("v%d: two computations of the same delta differ", v)
		}
	}
}

// TestWiderScopeServesLaterClients: a server answers a client whose last sync
// was at T with the delta from an earlier grid point L (a scope wider than
// needed, or a timestamp off the grid rounded down). A value that changed
// between L and T and changed back afterwards must still reach that client.
func TestWiderScopeServesLaterClients(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 40)
	last := quiet.Add(-6 * hour)
	client := last.Add(2 * hour)
	before := last.Add(-day)
	f.announce(id, 1, 2, before)
	f.update(id, upd{dir: 0, ts: before, seen: before, fee: 1, cltv: 40})
	f.update(id, upd{dir: 1, ts: before, seen: before, fee: 1})
	f.update(id, upd{dir: 0, ts: client.Add(-hour), seen: client.Add(-hour), fee: 1, cltv: 80, disabled: true})
	f.update(id, upd{dir: 0, ts: client.Add(hour), seen: client.Add(hour), fee: 1, cltv: 40})
	f.node(1, before, before, []byte{0x02}, ipv4(1, 1, 1, 1, 9735))
	f.node(1, client.Add(-hour), client.Add(-hour), []byte{0x02}, ipv4(2, 2, 2, 2, 9735))
	f.node(1, client.Add(hour), client.Add(hour), []byte{0x02}, ipv4(1, 1, 1, 1, 9735))

	d, _ := f.delta(last, quiet)
	u := findUpdate(d, id, 0)
	if u == nil || u.Changed&rgs.FieldCLTVExpiryDelta == 0 || u.Policy.CLTVExpiryDelta != 40 || u.Disabled {
		t.Errorf("direction 0 = %+v, want cltv 40 and enabled sent", u)
	}
	n := findNode(d, nodeID(1))
	if n == nil || !n.HasAddresses || len(n.Addresses) != 1 || n.Addresses[0].String() != "1.1.1.1:9735" {
		t.Errorf("node 1 = %+v, want its address list sent", n)
	}
	// The client synced at T: it holds cltv 80, disabled. Applying the wide
	// delta brings it to the server's state.
	model := clientModel{}
	full, _ := f.delta(time.Time{}, client)
	model.apply(full)
	model.apply(d)
	truth := clientModel{}
	now, _ := f.delta(time.Time{}, quiet)
	truth.apply(now)
	if got, want := *model[id][0], *truth[id][0]; got != want {
		t.Errorf("client after the wide delta holds %+v, want %+v", got, want)
	}
}
