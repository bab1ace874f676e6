package gen

import (
	"encoding/csv"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/lnsync/lnsync/gsp"
	"github.com/lnsync/lnsync/gsp/gsptest"
)

// The tests in this file recount the tables of dist.go from the datasets
// they come from.

type lnconvUpdate struct {
	ts, flags                   int64
	cltv, hmin, hmax, base, ppm string
	seen                        float64
}

func readLNConv(t *testing.T) []lnconvUpdate {
	t.Helper()
	f, err := os.Open(filepath.Join(datasets, "lnconv-2021", "gossip_latest.csv.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	cr := csv.NewReader(zr)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int {
		i := slices.Index(head, name)
		if i < 0 {
			t.Fatalf("no column %s", name)
		}
		return i
	}
	cType, cTS, cFlags, cSeen := col("type"), col("timestamp"), col("channel_flags"), col("time_seen")
	cCLTV, cMin, cMax := col("cltv_expiry_delta"), col("htlc_minimum_msat"), col("htlc_maximum_msat")
	cBase, cPPM, cChan := col("fee_base_msat"), col("fee_proportional_millionths"), col("channel")
	var out []lnconvUpdate
	chans := map[string]int64{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if rec[cType] != "update" {
			continue
		}
		ts, _ := strconv.ParseInt(rec[cTS], 10, 64)
		fl, _ := strconv.ParseInt(rec[cFlags], 10, 64)
		seen, _ := strconv.ParseFloat(rec[cSeen], 64)
		id, ok := chans[rec[cChan]]
		if !ok {
			id = int64(len(chans))
			chans[rec[cChan]] = id
		}
		// Pack the channel id into flags' upper bits to key directions.
		out = append(out, lnconvUpdate{ts: ts, flags: fl | id<<8, cltv: rec[cCLTV], hmin: rec[cMin],
			hmax: rec[cMax], base: rec[cBase], ppm: rec[cPPM], seen: seen})
	}
	return out
}

func TestChangeSetsMatchSource(t *testing.T) {
	ups := readLNConv(t)
	if len(ups) != 78034 {
		t.Fatalf("%d updates in the 2021 capture, want 78034", len(ups))
	}
	byDir := map[int64][]lnconvUpdate{}
	for _, u := range ups {
		k := u.flags>>8<<1 | u.flags&1
		byDir[k] = append(byDir[k], u)
	}
	got := map[ChangeSet]int{}
	for _, l := range byDir {
		slices.SortStableFunc(l, func(a, b lnconvUpdate) int { return int(a.ts - b.ts) })
		for i := 1; i < len(l); i++ {
			a, b := l[i-1], l[i]
			if a.ts == b.ts {
				continue
			}
			var c ChangeSet
			if a.flags&2 != b.flags&2 {
				c |= ChangeDisable
			}
			if a.cltv != b.cltv {
				c |= ChangeCLTV
			}
			if a.hmin != b.hmin {
				c |= ChangeHTLCMin
			}
			if a.hmax != b.hmax {
				c |= ChangeHTLCMax
			}
			if a.base != b.base {
				c |= ChangeFeeBase
			}
			if a.ppm != b.ppm {
				c |= ChangeFeePPM
			}
			got[c]++
		}
	}
	want := map[ChangeSet]int{}
	for _, cs := range ChangeSets {
		want[cs.Set] = cs.Count
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct change sets in the source, table has %d", len(got), len(want))
	}
	for set, n := range want {
		if got[set] != n {
			t.Errorf("change set %06b: source %d, table %d", set, got[set], n)
		}
	}

	var delays []float64
	for _, u := range ups {
		delays = append(delays, max(0, u.seen-float64(u.ts)))
	}
	slices.Sort(delays)
	for _, q := range ReceiveDelayQuantiles {
		got := delays[min(int(q[0]*float64(len(delays))), len(delays)-1)]
		if math.Abs(got-q[1]) > 0.051 {
			t.Errorf("delay quantile %.3f: source %.2f s, table %.1f s", q[0], got, q[1])
		}
	}
}

func TestLNResearchTablesMatchSource(t *testing.T) {
	latest := map[string][]byte{}
	var updates, withTLV int
	inbound := map[[2]int32]int{}
	for _, rec := range gsptest.Records(t, filepath.Join(datasets, "lnresearch-gsp-2025", "lnresearch-2025-merged.gsp")) {
		switch rec.Type {
		case gsp.TypeNodeAnnouncement:
			fl := int(rec.Msg[66])<<8 | int(rec.Msg[67])
			latest[string(rec.Msg[68+fl+4:68+fl+37])] = rec.Msg
		case gsp.TypeChannelUpdate:
			updates++
			if len(rec.Msg) == 150 {
				withTLV++
				b := rec.Msg[142:]
				inbound[[2]int32{int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])),
					int32(uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7]))}]++
			}
		}
	}
	if got := float64(withTLV) / float64(updates); got != InboundFeeShare {
		t.Errorf("inbound-fee share %d/%d, table %.4f", withTLV, updates, InboundFeeShare)
	}
	for _, f := range InboundFees {
		if inbound[[2]int32{f.Base, f.PPM}] != f.Count {
			t.Errorf("inbound fee (%d,%d): source %d, table %d", f.Base, f.PPM, inbound[[2]int32{f.Base, f.PPM}], f.Count)
		}
	}
	type mix struct{ v4, v6, tor bool }
	got := map[mix]int{}
	feats := map[string]int{}
	for _, msg := range latest {
		ty := addrTypes(t, msg)
		if ty[3] != 0 || ty[5] != 0 {
			t.Errorf("source has tor v2 or dns addresses: %v", ty)
		}
		got[mix{ty[1] > 0, ty[2] > 0, ty[4] > 0}]++
		fl := int(msg[66])<<8 | int(msg[67])
		var bits []uint16
		for i, b := range msg[68 : 68+fl] {
			for k := range 8 {
				if b>>k&1 == 1 {
					bits = append(bits, uint16((fl-1-i)*8+k))
				}
			}
		}
		slices.Sort(bits)
		feats[fmtBits(bits)]++
	}
	if len(latest) != 1012 {
		t.Errorf("%d announced nodes, want 1012", len(latest))
	}
	for _, m := range AddressMix {
		if n := got[mix{m.IPv4, m.IPv6, m.Tor}]; n != m.Count {
			t.Errorf("address mix %+v: source %d, table %d", m, n, m.Count)
		}
	}
	for _, fs := range NodeFeatureSets {
		if n := feats[fmtBits(fs.Bits)]; n != fs.Count {
			t.Errorf("feature set %v: source %d nodes, table %d", fs.Bits, n, fs.Count)
		}
	}
}

func fmtBits(b []uint16) string {
	s := ""
	for _, x := range b {
		s += strconv.Itoa(int(x)) + ","
	}
	return s
}

func TestObserverConstants(t *testing.T) {
	f, err := os.Open(filepath.Join(datasets, observerDir, "messages_by_type.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows[1:] {
		got[r[3]] = r[1]
	}
	if got["channel_update"] != strconv.Itoa(observerChannelUpds) || got["node_announcement"] != strconv.Itoa(observerNodeAnns) {
		t.Errorf("observer counts %v, constants %d/%d", got, observerChannelUpds, observerNodeAnns)
	}
	sf, nf, err := LoadFrequencies(datasets)
	if err != nil {
		t.Fatal(err)
	}
	if len(sf) != 50000 || len(nf) != 5736 || sf[len(sf)-1] != 1243 || nf[len(nf)-1] != 3369 {
		t.Errorf("frequency tables: %d SCIDs (max %d), %d nodes (max %d)", len(sf), sf[len(sf)-1], len(nf), nf[len(nf)-1])
	}
	if r := ChannelUpdatesPerChannelDay * referenceChannels; r < 258000 || r > 259000 {
		t.Errorf("reference channel_updates per day %.0f, want ≈258,600", r)
	}
}
