package rgs_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/tor"

	"github.com/lnsync/lnsync/rgs"
	"github.com/lnsync/lnsync/rgs/rgstest"
)

func TestBigSize(t *testing.T) {
	// Values and encodings from the BOLT 1 examples recorded with the vectors.
	tests := []struct {
		v   uint64
		hex string
	}{
		{0, "00"}, {1, "01"}, {252, "fc"}, {253, "fd00fd"}, {65535, "fdffff"},
		{65536, "fe00010000"}, {4294967295, "feffffffff"}, {4294967296, "ff0000000100000000"},
		{9223372036854775809, "ff8000000000000001"}, {619737530008010752, "ff0899c000021b0000"},
	}
	keys := rgstest.Keys(1, 2)
	for _, tc := range tests {
		t.Run(tc.hex, func(t *testing.T) {
			// The first announcement's scid delta is the scid itself.
			d := &rgs.Delta{Announcements: []rgs.Announcement{{SCID: tc.v, NodeID1: keys[0], NodeID2: keys[1]}}}
			b, err := d.Encode(rgs.Version1)
			if err != nil {
				t.Fatal(err)
			}
			off := 4 + 32 + 4 + 4 + 66 + 4 + 2
			want := mustHexT(t, tc.hex)
			if got := b[off : off+len(want)]; !bytes.Equal(got, want) {
				t.Errorf("bigsize(%d) = %x, want %s", tc.v, got, tc.hex)
			}
			f, err := rgs.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if f.Announcements[0].SCID != tc.v {
				t.Errorf("decoded %d", f.Announcements[0].SCID)
			}
		})
	}
}

func TestDecodeRejectsNonMinimalBigSize(t *testing.T) {
	keys := rgstest.Keys(1, 2)
	d := &rgs.Delta{Announcements: []rgs.Announcement{{SCID: 0xfc, NodeID1: keys[0], NodeID2: keys[1]}}}
	b, err := d.Encode(rgs.Version1)
	if err != nil {
		t.Fatal(err)
	}
	off := 4 + 32 + 4 + 4 + 66 + 4 + 2
	for _, bad := range []string{"fd00fc", "fe0000ffff", "ff00000000ffffffff"} {
		t.Run(bad, func(t *testing.T) {
			nb := append(append(append([]byte{}, b[:off]...), mustHexT(t, bad)...), b[off+1:]...)
			if _, err := rgs.Decode(nb); !errors.Is(err, rgs.ErrInvalidValue) {
				t.Errorf("Decode = %v, want ErrInvalidValue", err)
			}
		})
	}
}

func mustHexT(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	for i := 0; i+1 < len(s); i += 2 {
		var v byte
		for _, c := range s[i : i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c-'a') + 10
			default:
				t.Fatalf("bad hex %q", s)
			}
		}
		b = append(b, v)
	}
	return b
}

func TestEncodeRejects(t *testing.T) {
	k := rgstest.Keys(7, 3)
	bad := k[0]
	bad[0] = 0x04
	ann := func(scid uint64, a, b rgs.NodeID) rgs.Announcement {
		return rgs.Announcement{SCID: scid, NodeID1: a, NodeID2: b}
	}
	upd := func(scid uint64, dir uint8) rgs.Update { return rgs.Update{SCID: scid, Direction: dir} }
	tests := []struct {
		name    string
		d       rgs.Delta
		version int
		want    error
	}{
		{"version 3", rgs.Delta{}, 3, rgs.ErrUnknownVersion},
		{"node ids descending", rgs.Delta{Announcements: []rgs.Announcement{ann(1, k[1], k[0])}}, 1, rgs.ErrNodeOrder},
		{"same node", rgs.Delta{Announcements: []rgs.Announcement{ann(1, k[1], k[1])}}, 2, rgs.ErrSameNode},
		{"bad key prefix", rgs.Delta{Announcements: []rgs.Announcement{ann(1, bad, k[1])}}, 2, rgs.ErrInvalidDelta},
		{"announcements unsorted", rgs.Delta{Announcements: []rgs.Announcement{ann(2, k[0], k[1]), ann(1, k[0], k[1])}}, 1, rgs.ErrUnsorted},
		{"announcement twice", rgs.Delta{Announcements: []rgs.Announcement{ann(2, k[0], k[1]), ann(2, k[0], k[2])}}, 1, rgs.ErrDuplicate},
		{"update twice", rgs.Delta{Updates: []rgs.Update{upd(5, 1), upd(5, 1)}}, 1, rgs.ErrDuplicate},
		{"updates unsorted by direction", rgs.Delta{Updates: []rgs.Update{upd(5, 1), upd(5, 0)}}, 2, rgs.ErrUnsorted},
		{"updates unsorted by scid", rgs.Delta{Updates: []rgs.Update{upd(6, 0), upd(5, 0)}}, 1, rgs.ErrUnsorted},
		{"direction 2", rgs.Delta{Updates: []rgs.Update{upd(5, 2)}}, 1, rgs.ErrInvalidDelta},
		{"changed outside fields", rgs.Delta{Updates: []rgs.Update{{SCID: 1, Kind: rgs.Incremental, Changed: 0x80}}}, 1, rgs.ErrInvalidDelta},
		{"node twice", rgs.Delta{Nodes: []rgs.NodeDelta{{NodeID: k[0], Reminder: true}, {NodeID: k[0]}}}, 2, rgs.ErrDuplicate},
		{"address with leftover bytes", rgs.Delta{Nodes: []rgs.NodeDelta{{NodeID: k[0], HasAddresses: true,
			Addresses: []rgs.Address{{1, 127, 0, 0, 1, 0x26, 0x07, 0xff}}}}}, 2, rgs.ErrShortRead},
		{"address too long", rgs.Delta{Nodes: []rgs.NodeDelta{{NodeID: k[0], HasAddresses: true,
			Addresses: []rgs.Address{make(rgs.Address, 256)}}}}, 2, rgs.ErrInvalidDelta},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.d.Encode(tc.version); !errors.Is(err, tc.want) {
				t.Errorf("Encode = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeDeterministicChoices(t *testing.T) {
	k := rgstest.Keys(3, 6)
	full := func(scid uint64, dir uint8, p rgs.Policy) rgs.Update {
		return rgs.Update{SCID: scid, Direction: dir, Kind: rgs.Full, Policy: p}
	}
	d := &rgs.Delta{
		ChainHash: rgs.ChainRegtest,
		Timestamp: 1_700_000_000,
		Announcements: []rgs.Announcement{
			{SCID: 10, NodeID1: k[2], NodeID2: k[4], FundingSats: 1_000_000, FundingKnown: true},
			{SCID: 20, NodeID1: k[0], NodeID2: k[2]},
		},
		Updates: []rgs.Update{
			// cltv 40 x2, 144 x2 -> tie -> 40; htlc_max 7 x2, 5 x2 -> 5.
			full(10, 0, rgs.Policy{CLTVExpiryDelta: 144, HTLCMaximumMsat: 7, FeeBaseMsat: 3}),
			full(10, 1, rgs.Policy{CLTVExpiryDelta: 40, HTLCMaximumMsat: 5, FeeBaseMsat: 3}),
			full(20, 0, rgs.Policy{CLTVExpiryDelta: 144, HTLCMaximumMsat: 7, FeeBaseMsat: 9}),
			full(20, 1, rgs.Policy{CLTVExpiryDelta: 40, HTLCMaximumMsat: 5, FeeBaseMsat: 9}),
			// Incremental and reminder updates do not vote.
			{SCID: 30, Kind: rgs.Incremental, Changed: rgs.FieldCLTVExpiryDelta, Policy: rgs.Policy{CLTVExpiryDelta: 144}},
			{SCID: 30, Direction: 1, Kind: rgs.Reminder, Disabled: true},
		},
		Nodes: []rgs.NodeDelta{
			// Features "aa" used by 3 nodes, "01" by 2, "ff" by 2, "02" once.
			{NodeID: k[5], HasFeatures: true, Features: []byte{0xaa}},
			{NodeID: k[4], HasFeatures: true, Features: []byte{0xff}},
			{NodeID: k[3], HasFeatures: true, Features: []byte{0x01}, Reminder: true},
			{NodeID: k[2], HasFeatures: true, Features: []byte{0xaa}, HasAddresses: true},
			{NodeID: k[1], HasFeatures: true, Features: []byte{0x01}},
			{NodeID: k[0], HasFeatures: true, Features: []byte{0xaa}},
		},
	}
	// k[4] keeps 0xff but a second node shares it only if it is written.
	d.Nodes = append(d.Nodes[:1], d.Nodes[2:]...)
	d.Nodes = append(d.Nodes, rgs.NodeDelta{NodeID: k[4], HasFeatures: true, Features: []byte{0xff}})
	b, err := d.Encode(rgs.Version2)
	if err != nil {
		t.Fatal(err)
	}
	f, err := rgs.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (rgs.Policy{CLTVExpiryDelta: 40, FeeBaseMsat: 3, HTLCMaximumMsat: 5}); *f.Defaults != want {
		t.Errorf("defaults = %+v, want %+v", *f.Defaults, want)
	}
	if got := f.DefaultNodeFeatures; !reflect.DeepEqual(got, []rgs.Features{{0xaa}, {0x01}}) {
		t.Errorf("default node features = %x, want [aa 01]", got)
	}
	var order []rgs.NodeID
	for _, n := range f.Nodes {
		order = append(order, n.NodeID)
	}
	// Announcement order first (k2, k4 from scid 10; k0 from scid 20), then data-only nodes sorted.
	if want := []rgs.NodeID{k[2], k[4], k[0], k[1], k[3], k[5]}; !reflect.DeepEqual(order, want) {
		t.Errorf("node table order = %v, want %v", order, want)
	}
	markers := map[rgs.NodeID]uint8{}
	for _, n := range f.Nodes {
		markers[n.NodeID] = n.FeatureMarker
	}
	if markers[k[5]] != 1 || markers[k[1]] != 2 || markers[k[4]] != 7 {
		t.Errorf("markers = %v", markers)
	}
	if a := f.Announcements[0]; !a.FundingKnown || a.FundingSats != 1_000_000 || len(a.Extra) != 5 {
		t.Errorf("funding = %+v", a)
	}
	if a := f.Announcements[1]; a.HasExtra {
		t.Errorf("unfunded announcement has extra data: %+v", a)
	}
	if u := f.Updates[5]; u.Flags != 0x83 || u.Kind != rgs.Reminder {
		t.Errorf("reminder flags = %#x kind %v", u.Flags, u.Kind)
	}
	if u := f.Updates[4]; u.Flags != 0xc0 || u.Values.CLTVExpiryDelta != 144 {
		t.Errorf("incremental = %+v", u)
	}
	// Same input, same bytes; and the streaming writer agrees.
	b2, _ := d.Encode(rgs.Version2)
	var buf bytes.Buffer
	n, err := d.EncodeTo(&buf, rgs.Version2)
	if err != nil || n != int64(len(b)) || !bytes.Equal(b, b2) || !bytes.Equal(b, buf.Bytes()) {
		t.Errorf("encoding not deterministic (EncodeTo n=%d err=%v)", n, err)
	}
	// Version 1 leaves node data and funding out.
	b1, err := d.Encode(rgs.Version1)
	if err != nil {
		t.Fatal(err)
	}
	f1, err := rgs.Decode(b1)
	if err != nil {
		t.Fatal(err)
	}
	if len(f1.Nodes) != 3 || f1.Announcements[0].HasExtra {
		t.Errorf("v1: %d nodes, extra %v", len(f1.Nodes), f1.Announcements[0].HasExtra)
	}
}

func TestSetChannelFlags(t *testing.T) {
	tests := []struct {
		flags    uint8
		dir      uint8
		disabled bool
		wire     byte
	}{
		{0x00, 0, false, 0x00}, {0x01, 1, false, 0x01}, {0x02, 0, true, 0x02}, {0x03, 1, true, 0x03},
		// Unknown bits never reach the RGS flag byte.
		{0xfc, 0, false, 0x00}, {0xff, 1, true, 0x03}, {0x81, 1, false, 0x01},
	}
	for _, tc := range tests {
		var u rgs.Update
		u.SetChannelFlags(tc.flags)
		if u.Direction != tc.dir || u.Disabled != tc.disabled {
			t.Errorf("SetChannelFlags(%#x) = dir %d disabled %v", tc.flags, u.Direction, u.Disabled)
		}
		d := &rgs.Delta{Updates: []rgs.Update{u}}
		b, err := d.Encode(rgs.Version1)
		if err != nil {
			t.Fatal(err)
		}
		// Header 40, three counts 12, defaults 26, scid delta 1, then flags.
		if got := b[40+12+26+1]; got != tc.wire {
			t.Errorf("channel_flags %#x: wire flags %#x, want %#x", tc.flags, got, tc.wire)
		}
	}
}

// TestRandomRoundTrip encodes random deltas in both versions and checks the
// decoded semantics, the client-side validation and that no v2 entry would be
// read as forward-compatibility data.
func TestRandomRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		d := rgstest.Delta(seed, rgstest.Options{Nodes: 60, Channels: 150, OneDirection: 0.2, Disabled: 0.1,
			NodeData: 0.7, Reminders: 0.1, UnfundedFraction: 0.2})
		for _, v := range []int{rgs.Version1, rgs.Version2} {
			b, err := d.Encode(v)
			if err != nil {
				t.Fatalf("seed %d v%d: %v", seed, v, err)
			}
			f, err := rgs.Decode(b)
			if err != nil {
				t.Fatalf("seed %d v%d: %v", seed, v, err)
			}
			if err := f.Validate(&d.ChainHash, 0); err != nil {
				t.Errorf("seed %d v%d: Validate: %v", seed, v, err)
			}
			for _, u := range f.Updates {
				if u.IsExtra {
					t.Fatalf("seed %d v%d: update %d read as extra data", seed, v, u.SCID)
				}
			}
			got := f.Delta()
			want := *d
			if v == rgs.Version1 {
				want.Nodes = nil
				want.Announcements = append([]rgs.Announcement(nil), d.Announcements...)
				for i := range want.Announcements {
					want.Announcements[i].FundingKnown, want.Announcements[i].FundingSats = false, 0
				}
			}
			if !reflect.DeepEqual(got.Announcements, want.Announcements) || !reflect.DeepEqual(got.Updates, want.Updates) {
				t.Errorf("seed %d v%d: channels differ after round trip", seed, v)
			}
			if len(got.Nodes) != len(want.Nodes) {
				t.Fatalf("seed %d v%d: %d nodes, want %d", seed, v, len(got.Nodes), len(want.Nodes))
			}
			for i := range got.Nodes {
				g, w := got.Nodes[i], want.Nodes[i]
				if g.NodeID != w.NodeID || g.Reminder != w.Reminder || g.HasFeatures != w.HasFeatures ||
					!bytes.Equal(g.Features, w.Features) || g.HasAddresses != w.HasAddresses || len(g.Addresses) != len(w.Addresses) {
					t.Errorf("seed %d v%d: node %d = %+v, want %+v", seed, v, i, g, w)
				}
			}
		}
	}
}

func TestAddressConversions(t *testing.T) {
	v3 := "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd.onion"
	tests := []struct {
		name string
		addr net.Addr
		typ  uint8
		size int
		str  string
	}{
		{"ipv4", &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 9735}, rgs.AddrIPv4, 7, "203.0.113.7:9735"},
		{"ipv6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 9735}, rgs.AddrIPv6, 19, "[2001:db8::1]:9735"},
		{"tor v2", &tor.OnionAddr{OnionService: "3g2upl4pq6kufc4m.onion", Port: 9735}, rgs.AddrTorV2, 13, "3g2upl4pq6kufc4m.onion:9735"},
		{"tor v3", &tor.OnionAddr{OnionService: v3, Port: 9735}, rgs.AddrTorV3, 38, v3 + ":9735"},
		{"dns", &rgs.DNSAddr{Hostname: "node.example.com", Port: 9736}, rgs.AddrHostname, 20, "node.example.com:9736"},
		{"opaque", &lnwire.OpaqueAddrs{Payload: []byte{9, 1, 2}}, 9, 3, "090102"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := rgs.NewAddress(tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if a.Type() != tc.typ || len(a) != tc.size || a.String() != tc.str {
				t.Errorf("address = type %d len %d %q", a.Type(), len(a), a.String())
			}
			back, err := a.NetAddr()
			if err != nil {
				t.Fatal(err)
			}
			again, err := rgs.NewAddress(back)
			if err != nil || !bytes.Equal(again, a) {
				t.Errorf("round trip %x -> %v -> %x (%v)", []byte(a), back, []byte(again), err)
			}
		})
	}
	if rgs.Address([]byte{5, 3, 'a', ' ', 'b', 0, 1}).Usable() {
		t.Error("hostname with a space is usable")
	}
	if rgs.Address([]byte{1, 1, 2}).Usable() {
		t.Error("truncated ipv4 is usable")
	}
}

func TestDecodeRejects(t *testing.T) {
	k := rgstest.Keys(9, 2)
	base := &rgs.Delta{ChainHash: rgs.ChainMainnet, Timestamp: 1_700_000_000,
		Announcements: []rgs.Announcement{{SCID: 5, NodeID1: k[0], NodeID2: k[1]}},
		Updates:       []rgs.Update{{SCID: 5, Kind: rgs.Full}},
		Nodes:         []rgs.NodeDelta{{NodeID: k[0], HasFeatures: true, Features: []byte{1}}}}
	v2, err := base.Encode(rgs.Version2)
	if err != nil {
		t.Fatal(err)
	}
	// Offsets in the v2 file: header 40, default count 1, node count 4.
	node0 := 4 + 32 + 4 + 1 + 4
	node1 := node0 + 33 + 2 + 1
	annCount := node1 + 33
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), v2...))
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), rgs.ErrUnknownVersion},
		{"version 0", mutate(func(b []byte) []byte { b[3] = 0; return b }), rgs.ErrUnknownVersion},
		{"feature marker past defaults", mutate(func(b []byte) []byte { b[node0] = b[node0]&^0x38 | 1<<3; return b }), rgs.ErrInvalidValue},
		{"key prefix bits cleared", mutate(func(b []byte) []byte { b[node1] &^= 0x03; return b }), rgs.ErrInvalidValue},
		{"x not on curve", mutate(func(b []byte) []byte {
			for i := 1; i < 33; i++ {
				b[node1+i] = 0xff
			}
			return b
		}), rgs.ErrInvalidValue},
		{"node index out of range", mutate(func(b []byte) []byte { b[annCount+4+2+1+1] = 2; return b }), rgs.ErrInvalidValue},
		{"same node twice", mutate(func(b []byte) []byte { b[annCount+4+2+1+1] = 0; return b }), rgs.ErrSameNode},
		{"nonsense node count", mutate(func(b []byte) []byte { b[node0-4], b[node0-3] = 0, 0x04; return b }), rgs.ErrNonsenseCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rgs.Decode(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("Decode = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("scid overflow", func(t *testing.T) {
		d := &rgs.Delta{Updates: []rgs.Update{{SCID: 1 << 63}, {SCID: 1<<63 + 1}}}
		b, err := d.Encode(rgs.Version1)
		if err != nil {
			t.Fatal(err)
		}
		// Make the second delta 2^63 too: 2^63 + 2^63 overflows.
		i := bytes.LastIndex(b, []byte{0x01, 0x00})
		nb := append(append(append([]byte{}, b[:i]...), 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0), b[i+1:]...)
		if _, err := rgs.Decode(nb); !errors.Is(err, rgs.ErrInvalidValue) {
			t.Errorf("Decode = %v, want ErrInvalidValue", err)
		}
	})
	t.Run("validate", func(t *testing.T) {
		f, err := rgs.Decode(v2)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Validate((*[32]byte)(&rgs.ChainRegtest), 0); !errors.Is(err, rgs.ErrChainHash) {
			t.Errorf("Validate(regtest) = %v", err)
		}
		if err := f.Validate(nil, 1_700_000_000+14*86400); err != nil {
			t.Errorf("Validate(ts+14d) = %v", err)
		}
		if err := f.Validate(nil, 1_700_000_000+14*86400+1); !errors.Is(err, rgs.ErrStale) {
			t.Errorf("Validate(ts+14d+1) = %v", err)
		}
	})
}

// sizes reports raw and gzip sizes; used by the benchmarks.
func sizes(b []byte) (raw, gz int) {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return len(b), buf.Len()
}
