package lookup_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/rgs"
)

// A node that announces more than the RGS format can carry (300 addresses,
// a 252-byte DNS hostname) gets its first 255 carriable addresses, counted
// in the metrics; every other node and channel is served as usual.
func TestOversizedNodeAnnouncementsAreTrimmed(t *testing.T) {
	f := newFixture(t)
	seen := epoch.Add(-2 * hour)
	f.announce(scid(800000, 1), 1, 2, seen)
	f.announce(scid(800000, 2), 2, 3, seen)
	for _, id := range []uint64{scid(800000, 1), scid(800000, 2)} {
		for dir := range uint8(2) {
			f.update(id, upd{dir: dir, ts: seen, seen: seen, fee: 1, ppm: 10})
		}
	}
	var many [][]byte
	for i := range 300 {
		many = append(many, ipv4(10, 0, byte(i>>8), byte(i), 9735))
	}
	host := append([]byte{rgs.AddrHostname, 252}, bytes.Repeat([]byte{'h'}, 252)...)
	host = append(host, 0x26, 0x07)
	f.node(1, seen, seen, []byte{0x02}, many...)
	f.node(2, seen, seen, []byte{0x02}, ipv4(1, 2, 3, 4, 9735), host, ipv4(5, 6, 7, 8, 9735))
	f.node(3, seen, seen, []byte{0x02}, ipv4(9, 9, 9, 9, 9735))

	d, _ := f.delta(epoch.Add(-day), epoch) // encodes and decodes v1 and v2
	b, err := d.Encode(rgs.Version2)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := rgs.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Announcements) != 2 {
		t.Errorf("%d announcements, want both channels", len(dec.Announcements))
	}
	entry := func(id byte) *rgs.NodeEntry {
		for i := range dec.Nodes {
			if dec.Nodes[i].NodeID == nodeID(id) {
				return &dec.Nodes[i]
			}
		}
		return nil
	}
	want := map[byte]int{1: 255, 2: 2, 3: 1}
	for id, n := range want {
		nd := entry(id)
		if nd == nil || !nd.HasAddresses || len(nd.Addresses) != n {
			t.Errorf("node %d: %+v, want %d addresses", id, nd, n)
			continue
		}
		for _, a := range nd.Addresses {
			if len(a) > rgs.MaxAddressLen {
				t.Errorf("node %d: a %d-byte address was served", id, len(a))
			}
		}
	}
	if first := entry(1); first != nil && len(first.Addresses) > 0 && !bytes.Equal(first.Addresses[0], many[0]) {
		t.Errorf("node 1: the first addresses announced are not the ones kept")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(f.index.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			key := fam.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	wantCounts := map[string]float64{
		"lnsync_lookup_trimmed_node_announcements_total":              2,
		"lnsync_lookup_dropped_addresses_total/beyond_255_addresses":  45,
		"lnsync_lookup_dropped_addresses_total/longer_than_255_bytes": 1,
	}
	for k, v := range wantCounts {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// A funding amount learnt after the announcement was read reaches the next
// version 2 delta as the channel's capacity.
func TestSetFundingReachesDeltas(t *testing.T) {
	f := newFixture(t)
	seen := epoch.Add(-2 * hour)
	id := scid(800100, 1)
	f.announce(id, 1, 2, seen)
	for dir := range uint8(2) {
		f.update(id, upd{dir: dir, ts: seen, seen: seen, fee: 1, ppm: 10})
	}
	d, _ := f.delta(time.Time{}, epoch)
	if len(d.Announcements) != 1 || d.Announcements[0].FundingKnown {
		t.Fatalf("before: %+v", d.Announcements)
	}
	f.index.SetFunding(id, 1_500_000)
	f.index.SetFunding(scid(1, 1), 7) // unknown: ignored
	d, _ = f.delta(time.Time{}, epoch)
	if a := d.Announcements[0]; !a.FundingKnown || a.FundingSats != 1_500_000 {
		t.Errorf("after SetFunding: %+v", a)
	}
}
