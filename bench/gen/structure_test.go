package gen

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"
)

type dirKey struct {
	scid uint64
	dir  uint8
}

// TestStructure checks the invariants a consumer relies on, in file order.
func TestStructure(t *testing.T) {
	small := smallFixture(t)
	anns := map[uint64]*lnwire.ChannelAnnouncement1{}
	hasChannel := map[[33]byte]bool{}
	lastUpd := map[dirKey]uint32{}
	lastNode := map[[33]byte]uint32{}
	var prevRecv int64
	start := small.net.Params.Start
	for i, d := range small.msgs {
		recv := d.rec.ReceivedAt.UnixMicro()
		if d.rec.ReceivedAt.IsZero() {
			t.Fatalf("message %d has no receive time", i)
		}
		if recv < prevRecv {
			t.Fatalf("message %d: receive time goes back from %d to %d", i, prevRecv, recv)
		}
		prevRecv = recv
		if d.file == 0 && recv != start*1e6 {
			t.Fatalf("initial message %d received at %d, want the start", i, recv)
		}
		if d.file > 0 {
			day := (recv/1e6 - start) / 86400
			if int(day)+1 != d.file && !(d.file == len(small.files)-1 && int(day)+1 > d.file) {
				t.Fatalf("message %d received on day %d lies in %s", i, day, small.files[d.file])
			}
		}
		var ts uint32
		switch m := d.msg.(type) {
		case *lnwire.ChannelAnnouncement1:
			if bytes.Compare(m.NodeID1[:], m.NodeID2[:]) >= 0 {
				t.Fatalf("channel %v: node_id_1 not below node_id_2", m.ShortChannelID)
			}
			if anns[m.ShortChannelID.ToUint64()] != nil {
				t.Fatalf("channel %v announced twice", m.ShortChannelID)
			}
			anns[m.ShortChannelID.ToUint64()] = m
			hasChannel[m.NodeID1], hasChannel[m.NodeID2] = true, true
			continue
		case *lnwire.ChannelUpdate1:
			if anns[m.ShortChannelID.ToUint64()] == nil {
				t.Fatalf("update of %v before its announcement", m.ShortChannelID)
			}
			k := dirKey{m.ShortChannelID.ToUint64(), uint8(m.ChannelFlags & 1)}
			if m.Timestamp <= lastUpd[k] {
				t.Fatalf("update of %v dir %d: timestamp %d after %d", m.ShortChannelID, k.dir, m.Timestamp, lastUpd[k])
			}
			lastUpd[k] = m.Timestamp
			if m.HtlcMinimumMsat > m.HtlcMaximumMsat || m.MessageFlags&lnwire.ChanUpdateRequiredMaxHtlc == 0 {
				t.Fatalf("update of %v: htlc range %d..%d flags %v", m.ShortChannelID, m.HtlcMinimumMsat, m.HtlcMaximumMsat, m.MessageFlags)
			}
			ts = m.Timestamp
		case *lnwire.NodeAnnouncement:
			if !hasChannel[m.NodeID] {
				t.Fatalf("node %x announced before any of its channels", m.NodeID)
			}
			if m.Timestamp <= lastNode[m.NodeID] {
				t.Fatalf("node %x: timestamp %d after %d", m.NodeID, m.Timestamp, lastNode[m.NodeID])
			}
			lastNode[m.NodeID] = m.Timestamp
			ts = m.Timestamp
		}
		if recv < int64(ts)*1e6 {
			t.Fatalf("message %d received before its timestamp", i)
		}
		if d.file > 0 && int64(ts) < start {
			t.Fatalf("message %d in %s has a timestamp before the start", i, small.files[d.file])
		}
	}
	if len(lastUpd) != 2*len(anns) {
		t.Errorf("%d directions updated, want both directions of %d channels", len(lastUpd), len(anns))
	}
}

// TestTopologyKept checks that the generated channels are the snapshot's:
// the endpoints map back to the real node ids, and the first update of
// each direction carries that direction's snapshot policy.
func TestTopologyKept(t *testing.T) {
	small := smallFixture(t)
	n := small.net
	first := map[dirKey]*lnwire.ChannelUpdate1{}
	for _, d := range small.msgs {
		if u, ok := d.msg.(*lnwire.ChannelUpdate1); ok {
			k := dirKey{u.ShortChannelID.ToUint64(), uint8(u.ChannelFlags & 1)}
			if first[k] == nil {
				first[k] = u
			}
		}
	}
	swapped := 0
	for i, ch := range n.Channels {
		tc := n.Topology.Channels[i]
		for d := range 2 {
			gid, ok := n.GeneratedID(n.Topology.Nodes[tc.Nodes[d]].ID)
			if !ok {
				t.Fatalf("channel %d: real node %x has no generated key", i, n.Topology.Nodes[tc.Nodes[d]].ID)
			}
			// Snapshot direction d is the half-channel leaving
			// tc.Nodes[d]; on the wire that is the direction whose
			// node_id is gid.
			wireDir := 0
			if n.Nodes[ch.Nodes[1]].ID == gid {
				wireDir = 1
			} else if n.Nodes[ch.Nodes[0]].ID != gid {
				t.Fatalf("channel %d: endpoint %d is not %x", i, d, gid)
			}
			if d == 0 && wireDir == 1 {
				swapped++
			}
			u := first[dirKey{ch.SCID.ToUint64(), uint8(wireDir)}]
			p := tc.Policies[d]
			got := Policy{Disabled: u.ChannelFlags&lnwire.ChanUpdateDisabled != 0, HTLCMinMsat: uint64(u.HtlcMinimumMsat),
				HTLCMaxMsat: uint64(u.HtlcMaximumMsat), FeeBaseMsat: u.BaseFee, FeePPM: u.FeeRate, CLTVDelta: u.TimeLockDelta}
			if got != p {
				t.Fatalf("channel %d dir %d: first update %+v, snapshot %+v", i, d, got, p)
			}
			if p.HTLCMaxMsat > tc.CapacitySat*1000 {
				t.Fatalf("channel %d: htlc_max %d above capacity %d sat", i, p.HTLCMaxMsat, tc.CapacitySat)
			}
		}
	}
	// Generated keys order the endpoints at random: about half the
	// channels must have been swapped.
	if swapped < len(n.Channels)/3 || swapped > 2*len(n.Channels)/3 {
		t.Errorf("%d of %d channels swapped endpoints, want about half", swapped, len(n.Channels))
	}
}

func TestDeterminism(t *testing.T) {
	t0, sf, nf, err := loadTopo()
	if err != nil {
		t.Fatal(err)
	}
	gen := func(seed uint64, workers int) map[string][]byte {
		t.Helper()
		channels := 300
		if raceDetector {
			channels = 100
		}
		p := Params{Seed: seed, Channels: channels, Days: 1, Start: DefaultStart, Chain: Chains["mainnet"], Workers: workers}
		n, err := Build(t0, sf, nf, p)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, err := Generate(context.Background(), n, dir); err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for _, name := range []string{InitialFile, DayFile(0), ManifestFile, ChannelsFile} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			out[name] = b
		}
		return out
	}
	a, b, c := gen(11, 1), gen(11, 3), gen(12, 2)
	for name := range a {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
		if name != ManifestFile && bytes.Equal(a[name], c[name]) {
			t.Errorf("%s is the same for seeds 11 and 12", name)
		}
	}
}

func TestCopies(t *testing.T) {
	t0, sf, nf, err := loadTopo()
	if err != nil {
		t.Fatal(err)
	}
	base := t0.Sample(100, 5)
	n, err := Build(base, sf, nf, Params{Seed: 3, Channels: 250, Days: 1, Start: DefaultStart, Chain: Chains["regtest"]})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Channels) != 250 {
		t.Fatalf("%d channels, want 250", len(n.Channels))
	}
	scids := map[uint64]bool{}
	for _, ch := range n.Channels {
		scids[ch.SCID.ToUint64()] = true
	}
	ids := map[[33]byte]bool{}
	copies := map[int]int{}
	for _, nd := range n.Nodes {
		ids[nd.ID] = true
		copies[nd.Copy]++
	}
	if len(scids) != 250 || len(ids) != len(n.Nodes) {
		t.Errorf("%d distinct scids, %d distinct node ids of %d nodes: copies must get fresh ones", len(scids), len(ids), len(n.Nodes))
	}
	if len(copies) != 3 || copies[0] != len(base.Nodes) || copies[1] != len(base.Nodes) {
		t.Errorf("nodes per copy %v, want two full copies of %d nodes and a partial third", copies, len(base.Nodes))
	}
	// Copies keep the policies of the channels they copy.
	for i := range 100 {
		a, b := n.Channels[i], n.Channels[100+i]
		if a.CapacitySat != b.CapacitySat {
			t.Fatalf("copy of channel %d has capacity %d, want %d", i, b.CapacitySat, a.CapacitySat)
		}
	}
}

// TestChannelsFile checks that channels.csv describes the announced
// channels: same keys, capacities from the snapshot.
func TestChannelsFile(t *testing.T) {
	small := smallFixture(t)
	f, err := os.Open(filepath.Join(small.dir, ChannelsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(small.net.Channels) {
		t.Fatalf("%d rows, want a header and %d channels", len(rows), len(small.net.Channels))
	}
	byScid := map[string][]string{}
	for i, r := range rows[1:] {
		byScid[r[0]] = r
		if want := strconv.FormatUint(small.net.Topology.Channels[i].CapacitySat, 10); r[2] != want {
			t.Fatalf("row %d: capacity %s, snapshot %s", i, r[2], want)
		}
	}
	for _, d := range small.msgs {
		a, ok := d.msg.(*lnwire.ChannelAnnouncement1)
		if !ok {
			continue
		}
		r := byScid[strconv.FormatUint(a.ShortChannelID.ToUint64(), 10)]
		if r == nil {
			t.Fatalf("channel %v missing from %s", a.ShortChannelID, ChannelsFile)
		}
		got := []string{hex.EncodeToString(a.NodeID1[:]), hex.EncodeToString(a.NodeID2[:]),
			hex.EncodeToString(a.BitcoinKey1[:]), hex.EncodeToString(a.BitcoinKey2[:])}
		if !slices.Equal(got, r[3:7]) {
			t.Fatalf("channel %v: announcement keys %v, %s says %v", a.ShortChannelID, got, ChannelsFile, r[3:7])
		}
		if want := strings.ReplaceAll(a.ShortChannelID.String(), ":", "x"); r[1] != want {
			t.Fatalf("channel %v written as %s", a.ShortChannelID, r[1])
		}
	}
}
