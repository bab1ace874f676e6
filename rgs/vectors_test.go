package rgs

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nodeID(t testing.TB, s string) NodeID {
	t.Helper()
	var id NodeID
	if err := id.UnmarshalText([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return id
}

const (
	scidA = 619737530008010752 // 563648x539x0
	scidB = 783241506229452801 // 712354x2086x1
)

// vectorCase describes one upstream vector and what LDK asserts about it.
type vectorCase struct {
	name    string
	wantErr error
	// identical says our deterministic encoder reproduces the upstream bytes
	// from the decoded Delta.
	identical bool
	// encodeErr is the error our encoder gives for the decoded Delta, if any.
	encodeErr error
	// validateErr is what File.Validate(mainnet, 0) reports (current clients).
	validateErr error
	check       func(t *testing.T, f *File)
}

var v1Nodes = []string{
	"021607cfce19a4c5e7e6e738663dfafbbbac262e4ff76c2c9b30dbeefc35c00643",
	"02247d9db0dfafea745ef8c9e161eb322f73ac3f8858d8730b6fd97254747ce76b",
	"029e01f279986acc83ba235d46d80aede0b7595f410353b93a8ab540bb677f4432",
	"02c913118a8895b9e29c89af6e20ed00d95a1f64e4952edbafa84d048f26804c61",
}

func checkV1Table(t *testing.T, f *File) {
	t.Helper()
	if len(f.Nodes) != 4 {
		t.Fatalf("nodes = %d, want 4", len(f.Nodes))
	}
	for i, s := range v1Nodes {
		if got := f.Nodes[i].NodeID.String(); got != s {
			t.Errorf("node %d = %s, want %s", i, got, s)
		}
	}
	if len(f.Announcements) != 2 {
		t.Fatalf("announcements = %d, want 2", len(f.Announcements))
	}
	want := []AnnouncementEntry{
		{SCID: scidA, SCIDDelta: scidA, Features: Features{}, Node1Index: 0, Node2Index: 1},
		{SCID: scidB, SCIDDelta: scidB - scidA, Features: Features{}, Node1Index: 2, Node2Index: 3},
	}
	for i, w := range want {
		w.NodeID1 = f.Nodes[w.Node1Index].NodeID
		w.NodeID2 = f.Nodes[w.Node2Index].NodeID
		if !reflect.DeepEqual(f.Announcements[i], w) {
			t.Errorf("announcement %d = %+v, want %+v", i, f.Announcements[i], w)
		}
	}
}

func checkUpdates(t *testing.T, f *File, want []UpdateEntry) {
	t.Helper()
	if len(f.Updates) != len(want) {
		t.Fatalf("updates = %d, want %d", len(f.Updates), len(want))
	}
	for i, w := range want {
		g := f.Updates[i]
		g.ExtraData = nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("update %d =\n%+v, want\n%+v", i, g, w)
		}
	}
}

func checkIncremental(t *testing.T, f *File) {
	t.Helper()
	if f.Timestamp != 1642444711 {
		t.Errorf("timestamp = %d", f.Timestamp)
	}
	if *f.Defaults != (Policy{}) {
		t.Errorf("defaults = %+v, want zero", *f.Defaults)
	}
	checkUpdates(t, f, []UpdateEntry{
		{SCID: scidA, SCIDDelta: scidA, Flags: 0x88, Kind: Incremental, Present: FieldFeeProportionalMillionths,
			Values: Policy{FeeProportionalMillionths: 221}},
		{SCID: scidB, SCIDDelta: scidB - scidA, Flags: 0x80, Kind: Reminder},
	})
}

func checkV2NodeData(t *testing.T, f *File) {
	t.Helper()
	if f.Version != 2 || f.Timestamp != 1717686000 || len(f.DefaultNodeFeatures) != 0 {
		t.Errorf("header = v%d ts %d defaults %d", f.Version, f.Timestamp, len(f.DefaultNodeFeatures))
	}
	if len(f.Nodes) != 2 {
		t.Fatalf("nodes = %d, want 2", len(f.Nodes))
	}
	n0, n1 := f.Nodes[0], f.Nodes[1]
	if n0.NodeID != nodeID(t, "031b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f") ||
		n0.Flags != 0x3f || n0.FeatureMarker != 7 || !bytes.Equal(n0.Features, []byte{0x17, 0x30}) || !n0.HasAddresses {
		t.Errorf("node 0 = %+v", n0)
	}
	var types []string
	for _, a := range n0.Addresses {
		if !a.Usable() {
			t.Errorf("address %x not usable", []byte(a))
		}
		types = append(types, a.TypeName())
	}
	if got := strings.Join(types, ","); got != "torv3,ipv4,dns,ipv6,torv2" {
		t.Errorf("address types = %s", got)
	}
	if got := n0.Addresses[1].String(); got != "127.0.0.1:9635" {
		t.Errorf("ipv4 = %s", got)
	}
	if got := n0.Addresses[2].String(); got != "google.com:443" {
		t.Errorf("dns = %s", got)
	}
	if n1.NodeID != nodeID(t, "024d4b6cd1361032ca9bd2aeb9d900aa4d45d9ead80ac9423374c451a7254d0766") ||
		n1.Flags != 0x3e || !n1.HasAddresses || len(n1.Addresses) != 0 || !bytes.Equal(n1.Features, []byte{0x19, 0x30}) {
		t.Errorf("node 1 = %+v", n1)
	}
	if len(f.Announcements) != 1 || f.Announcements[0].SCID != 1 || f.Announcements[0].HasExtra {
		t.Errorf("announcements = %+v", f.Announcements)
	}
	if *f.Defaults != (Policy{FeeBaseMsat: 6}) {
		t.Errorf("defaults = %+v", *f.Defaults)
	}
	checkUpdates(t, f, []UpdateEntry{
		{SCID: 1, SCIDDelta: 1, Flags: 0x00, Kind: Full, Values: Policy{FeeBaseMsat: 6}},
		{SCID: 1, SCIDDelta: 0, Flags: 0x01, Direction: 1, Kind: Full, Values: Policy{FeeBaseMsat: 6}},
	})
}

func checkV2AdditionalData(funding uint64) func(t *testing.T, f *File) {
	return func(t *testing.T, f *File) {
		t.Helper()
		if len(f.DefaultNodeFeatures) != 1 || !bytes.Equal(f.DefaultNodeFeatures[0], []byte{0x17, 0x30}) {
			t.Errorf("default node features = %x", f.DefaultNodeFeatures)
		}
		if len(f.Nodes) != 3 {
			t.Fatalf("nodes = %d", len(f.Nodes))
		}
		for i, flags := range []uint8{0x8f, 0x8a, 0xba} {
			n := f.Nodes[i]
			if n.Flags != flags || len(n.Extra) != 255 {
				t.Errorf("node %d flags %#x extra %d", i, n.Flags, len(n.Extra))
			}
		}
		if !bytes.Equal(f.Nodes[0].Features, []byte{0x17, 0x30}) || !bytes.Equal(f.Nodes[2].Features, []byte{0x16, 0x31}) {
			t.Errorf("node features %x %x", f.Nodes[0].Features, f.Nodes[2].Features)
		}
		a := f.Announcements[0]
		if !a.HasExtra || len(a.Extra) != 147 || !a.FundingKnown || a.FundingSats != funding {
			t.Errorf("announcement extra %v %d funding %v %d", a.HasExtra, len(a.Extra), a.FundingKnown, a.FundingSats)
		}
		if len(f.Updates) != 2 || !f.Updates[1].IsExtra || len(f.Updates[1].ExtraData) != 17 || f.Updates[0].IsExtra {
			t.Errorf("updates = %+v", f.Updates)
		}
		if f.Trailing != 23 || f.Size != 1262 {
			t.Errorf("size %d trailing %d", f.Size, f.Trailing)
		}
	}
}

var vectorCases = []vectorCase{
	{name: "v1_valid_rgs_binary", identical: true, check: func(t *testing.T, f *File) {
		if f.Version != 1 || f.Timestamp != 1642291930 || f.ChainHash != Hash(ChainMainnet) || f.Trailing != 0 {
			t.Errorf("header = %+v", f)
		}
		checkV1Table(t, f)
		if *f.Defaults != (Policy{40, 1000, 1000, 1, 495000000}) {
			t.Errorf("defaults = %+v", *f.Defaults)
		}
		checkUpdates(t, f, []UpdateEntry{
			{SCID: scidA, SCIDDelta: scidA, Flags: 0x3c, Kind: Full, Present: 0x3c,
				Values: Policy{40, 1, 100, 736, 978679000}},
			{SCID: scidA, Flags: 0x1d, Direction: 1, Kind: Full, Present: 0x1c,
				Values: Policy{40, 1000, 1, 125, 978679000}},
			{SCID: scidB, SCIDDelta: scidB - scidA, Flags: 0x00, Kind: Full,
				Values: Policy{40, 1000, 1000, 1, 495000000}},
			{SCID: scidB, Flags: 0x01, Direction: 1, Kind: Full,
				Values: Policy{40, 1000, 1000, 1, 495000000}},
		})
	}},
	{name: "v1_clipped_input", wantErr: ErrShortRead},
	{name: "v3_unknown_version", wantErr: ErrUnknownVersion},
	{name: "v1_incremental", identical: true, check: func(t *testing.T, f *File) {
		if len(f.Nodes) != 0 || len(f.Announcements) != 0 {
			t.Errorf("nodes %d announcements %d", len(f.Nodes), len(f.Announcements))
		}
		checkIncremental(t, f)
	}},
	{name: "v1_announcements_incremental", identical: true, check: func(t *testing.T, f *File) {
		checkV1Table(t, f)
		checkIncremental(t, f)
	}},
	{name: "v1_init_direction1", check: func(t *testing.T, f *File) {
		checkV1Table(t, f)
		if *f.Defaults != (Policy{40, 1000, 1000, 1, 978679000}) {
			t.Errorf("defaults = %+v", *f.Defaults)
		}
		checkUpdates(t, f, []UpdateEntry{
			{SCID: scidA, SCIDDelta: scidA, Flags: 0x19, Direction: 1, Kind: Full, Present: 0x18,
				Values: Policy{40, 1000, 1, 125, 978679000}},
			{SCID: scidB, SCIDDelta: scidB - scidA, Flags: 0x05, Direction: 1, Kind: Full, Present: 0x04,
				Values: Policy{40, 1000, 1000, 1, 495000000}},
		})
	}},
	{name: "v1_init_both_directions", check: func(t *testing.T, f *File) {
		checkV1Table(t, f)
		if len(f.Updates) != 4 || f.Updates[0].Values != (Policy{40, 1, 100, 736, 978679000}) {
			t.Errorf("updates = %+v", f.Updates)
		}
	}},
	{name: "v2_node_data_main", check: func(t *testing.T, f *File) {
		checkV2NodeData(t, f)
		if a := f.Announcements[0]; a.Node1Index != 1 || a.Node2Index != 0 {
			t.Errorf("indices = %d,%d, want 1,0", a.Node1Index, a.Node2Index)
		}
	}},
	{name: "v2_node_data_v0.1", encodeErr: ErrNodeOrder, validateErr: ErrNodeOrder, check: func(t *testing.T, f *File) {
		checkV2NodeData(t, f)
		if a := f.Announcements[0]; a.Node1Index != 0 || a.Node2Index != 1 {
			t.Errorf("indices = %d,%d, want 0,1", a.Node1Index, a.Node2Index)
		}
	}},
	{name: "v2_nodes_without_channels", identical: true, check: func(t *testing.T, f *File) {
		if len(f.Nodes) != 1 || len(f.Nodes[0].Addresses) != 5 || f.Nodes[0].Flags != 0x3f ||
			len(f.Announcements) != 0 || len(f.Updates) != 0 || f.Defaults != nil || f.Timestamp != 1718204400 {
			t.Errorf("file = %+v", f)
		}
	}},
	{name: "v2_additional_data_main", check: checkV2AdditionalData(42)},
	{name: "v2_additional_data_v0.1", encodeErr: ErrNodeOrder, validateErr: ErrNodeOrder, check: checkV2AdditionalData(23)},
	{name: "v1_empty_delta", identical: true, check: func(t *testing.T, f *File) {
		if f.Timestamp != 1699995600 || f.Size != 52 || f.Defaults != nil {
			t.Errorf("file = %+v", f)
		}
	}},
	{name: "v2_empty_delta", identical: true, check: func(t *testing.T, f *File) {
		if f.Timestamp != 1699995600 || f.Size != 53 || f.Version != 2 {
			t.Errorf("file = %+v", f)
		}
	}},
}

// TestVectors decodes every upstream vector, checks what LDK asserts about it,
// compares the full decode with a golden file, and re-encodes it.
func TestVectors(t *testing.T) {
	for _, tc := range vectorCases {
		t.Run(tc.name, func(t *testing.T) {
			b := readVector(t, tc.name)
			f, err := Decode(b)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Decode error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tc.check(t, f)
			if err := f.Validate((*[32]byte)(&ChainMainnet), 0); !errors.Is(err, tc.validateErr) {
				t.Errorf("Validate = %v, want %v", err, tc.validateErr)
			}
			golden(t, filepath.Join("testdata", "golden", tc.name+".json"), f)

			d := f.Delta()
			out, err := d.Encode(f.Version)
			if tc.encodeErr != nil {
				if !errors.Is(err, tc.encodeErr) {
					t.Fatalf("Encode error = %v, want %v", err, tc.encodeErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got := bytes.Equal(out, b); got != tc.identical {
				t.Errorf("re-encoding identical = %v, want %v\n got %x\nwant %x", got, tc.identical, out, b)
			}
			f2, err := Decode(out)
			if err != nil {
				t.Fatalf("Decode(re-encoded): %v", err)
			}
			if d2 := f2.Delta(); !reflect.DeepEqual(d, d2) {
				t.Errorf("semantic round trip differs:\n%+v\n%+v", d, d2)
			}
		})
	}
}

// golden compares v's indented JSON with the file at path, rewriting it with
// -update.
func golden(t *testing.T, path string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (run go test -update after checking)\n%s", path, got)
	}
}

// TestTruncation decodes every prefix of every valid vector: none may panic, and
// every prefix shorter than the parsed content must fail with ErrShortRead.
func TestTruncation(t *testing.T) {
	for _, tc := range vectorCases {
		if tc.wantErr != nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			b := readVector(t, tc.name)
			f, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			consumed := len(b) - f.Trailing
			for n := 0; n < consumed; n++ {
				if _, err := Decode(b[:n:n]); !errors.Is(err, ErrShortRead) {
					t.Fatalf("Decode(first %d of %d bytes) = %v, want ErrShortRead", n, len(b), err)
				}
			}
			for n := consumed; n <= len(b); n++ {
				if _, err := Decode(b[:n:n]); err != nil {
					t.Fatalf("Decode(first %d bytes) = %v, want success (only trailing bytes cut)", n, err)
				}
			}
		})
	}
}
