package lookup_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/jackc/pgx/v5"

	"github.com/lnsync/lnsync/conformance"
	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/rgs"
	"github.com/lnsync/lnsync/snapshot"
)

// mainnetScale sizes the synthetic history of BenchmarkDeltaMainnet: today's
// mainnet graph and two weeks of gossip at its rate (about 250k channel
// updates a day, most of them on a small share of channels). Half channels
// are in the proportions of the reference server's 2023 mainnet snapshot:
// 4,408 of 69,455 channels have one direction only, and 2,722 nodes have no
// other channel; here their other end is such a node, which never signs an
// update.
var mainnetScale = struct {
	channels, nodes, days int
	updatesPerDay         int
	nodeAnnsPerDay        int
	halfShare             float64
	lonePerHalf           float64
}{channels: 55_000, nodes: 17_000, days: 14, updatesPerDay: 250_000, nodeAnnsPerDay: 40_000,
	halfShare: 4408.0 / 69455, lonePerHalf: 2722.0 / 4408}

// fillHistory stores a synthetic mainnet-scale history ending at ref through
// the batched writer and returns the number of rows and the half channels.
func fillHistory(b *testing.B, store *persistence.Store, ref time.Time) (int, map[uint64]bool) {
	b.Helper()
	s := mainnetScale
	if v := os.Getenv("LNSYNC_BENCH_CHANNELS"); v != "" {
		n, _ := strconv.Atoi(v)
		s.channels, s.nodes = n, n*17/55
		s.updatesPerDay = n * 250_000 / 55_000
		s.nodeAnnsPerDay = n * 40_000 / 55_000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, BatchSize: 20000, QueueSize: 100000}, persistencetest.Logger(b))
	w.Start(ctx)
	keys := make([]rgs.NodeID, s.nodes)
	for i := range keys {
		var secret [32]byte
		secret[0], secret[1], secret[2] = 7, byte(i>>8), byte(i)
		_, pub := btcec.PrivKeyFromBytes(secret[:])
		copy(keys[i][:], pub.SerializeCompressed())
	}
	start := ref.Add(-time.Duration(s.days) * day)
	span := ref.Sub(start)
	rows := 0
	submit := func(r persistence.Record) {
		if err := w.Submit(ctx, r); err != nil {
			b.Fatal(err)
		}
		rows++
	}
	// Each direction draws a weight from a heavy tail; updates are shared out
	// in proportion, so a few directions carry most of them.
	type dir struct {
		scid uint64
		d    uint8
		w    float64
	}
	dirs := make([]dir, 0, 2*s.channels)
	total := 0.0
	halves := int(float64(s.channels) * s.halfShare)
	lone := int(float64(halves) * s.lonePerHalf) // the last lone nodes have no channel but half ones
	half := map[uint64]bool{}
	for i := range s.channels {
		a, c := rng.IntN(s.nodes-lone), rng.IntN(s.nodes-lone)
		for c == a {
			c = rng.IntN(s.nodes - lone)
		}
		isHalf := i%(s.channels/halves) == 0 && len(half) < halves
		if isHalf {
			c = s.nodes - lone + rng.IntN(lone)
		}
		n1, n2 := keys[a], keys[c]
		silent := uint8(1) // the direction the lone node signs
		if bytes.Compare(n1[:], n2[:]) > 0 {
			n1, n2 = n2, n1
			silent = 0
		}
		id := uint64(700_000+i/4)<<40 | uint64(i%4)<<16
		announced := start.Add(time.Duration(rng.Int64N(int64(span / 10))))
		submit(&persistence.ChannelAnnouncement{SCID: id, NodeID1: n1, NodeID2: n2, Features: []byte{},
			FundingSats: uint64(100_000 + rng.IntN(10_000_000)), FundingKnown: true, Signed: []byte{1}, ReceivedAt: announced})
		if isHalf {
			half[id] = true
		}
		for d := range 2 {
			wt := rng.Float64()
			wt = wt * wt * wt * wt * wt * wt
			if isHalf && uint8(d) == silent {
				continue
			}
			dirs = append(dirs, dir{id, uint8(d), wt})
			total += wt
		}
	}
	updates := s.updatesPerDay * s.days
	for _, d := range dirs {
		n := 1 + int(float64(updates-len(dirs))*d.w/total)
		times := make([]int64, n)
		for i := range times {
			times[i] = start.Unix() + rng.Int64N(int64(span/time.Second))
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		fee, ppm, cltv, disabled := uint32(rng.IntN(2000)), uint32(rng.IntN(3000)), uint16(40+rng.IntN(100)), false
		for i, ts := range times {
			if i > 0 && ts <= times[i-1] {
				ts = times[i-1] + 1
				times[i] = ts
			}
			switch r := rng.Float64(); {
			case r < 0.25:
				ppm = uint32(rng.IntN(3000))
			case r < 0.30:
				fee = uint32(rng.IntN(2000))
			case r < 0.34:
				disabled = !disabled
			case r < 0.35:
				cltv = uint16(40 + rng.IntN(100))
			}
			flags := d.d
			if disabled {
				flags |= 2
			}
			submit(&persistence.ChannelUpdate{SCID: d.scid, Direction: d.d, Timestamp: uint32(ts), MessageFlags: 1, ChannelFlags: flags,
				CLTVExpiryDelta: cltv, HTLCMinimumMsat: 1000, FeeBaseMsat: fee, FeeProportionalMillionths: ppm,
				HTLCMaximumMsat: 990_000_000, Signed: []byte{2}, ReceivedAt: time.Unix(ts+int64(rng.IntN(60)), 0)})
		}
	}
	features := [][]byte{{0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x2a, 0x69, 0xa2},
		{0x88, 0x2a, 0x69, 0xa1}, {0x02, 0xa2, 0x69, 0xa2}}
	perNode := s.nodeAnnsPerDay * s.days / s.nodes
	for i, id := range keys {
		addr := []byte{1, 10, byte(i >> 8), byte(i), 1, 0x26, 0x07}
		if i%3 == 0 {
			addr = append(addr, append([]byte{4}, bytes.Repeat([]byte{byte(i)}, 37)...)...)
		}
		n := 1 + rng.IntN(2*perNode)
		for k := range n {
			ts := start.Unix() + int64(k)*int64(span/time.Second)/int64(n) + int64(rng.IntN(60))
			if k > 0 && rng.Float64() < 0.1 {
				addr = append([]byte(nil), addr...)
				addr[4] = byte(rng.IntN(256))
			}
			submit(&persistence.NodeAnnouncement{NodeID: id, Timestamp: uint32(ts), Features: features[i%len(features)],
				Addresses: addr, Signed: []byte{3}, ReceivedAt: time.Unix(ts+30, 0)})
		}
	}
	w.Stop()
	return rows, half
}

// BenchmarkDeltaMainnet loads a mainnet-scale history into an Index and
// measures one delta (computation and encoding) for the full, 7-day, 24-hour
// and 3-hour scopes in both format versions, reporting sizes raw and gzip.
// By default it stores a synthetic history (LNSYNC_BENCH_CHANNELS scales it
// down). With LNSYNC_BENCH_DATABASE_URL it reads an existing database instead,
// such as one filled by `lnsync import` from the generator's files, as of
// LNSYNC_BENCH_REF (unix seconds).
func BenchmarkDeltaMainnet(b *testing.B) {
	ref := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	url := os.Getenv("LNSYNC_BENCH_DATABASE_URL")
	var store *persistence.Store
	var half map[uint64]bool
	if url != "" {
		secs, err := strconv.ParseInt(os.Getenv("LNSYNC_BENCH_REF"), 10, 64)
		if err != nil {
			b.Fatalf("LNSYNC_BENCH_REF must be unix seconds with LNSYNC_BENCH_DATABASE_URL: %v", err)
		}
		ref = time.Unix(secs, 0).UTC()
		store = persistencetest.OpenMigrated(b, url)
	} else {
		url = persistencetest.NewMigratedDatabase(b)
		store = persistencetest.OpenMigrated(b, url)
		start := time.Now()
		rows, h := fillHistory(b, store, ref)
		half = h
		b.Logf("stored %d rows (%d half channels) in %v", rows, len(half), time.Since(start).Round(time.Millisecond))
	}
	start := time.Now()
	idx := lookup.NewIndex(store, rgs.ChainMainnet, persistencetest.Logger(b))
	if err := idx.CatchUp(context.Background(), ref); err != nil {
		b.Fatal(err)
	}
	st := idx.Stats()
	b.Logf("index load: %d rows, %d channels, %d nodes in %v; peak RSS %s", st.Rows, st.Channels, st.Nodes,
		time.Since(start).Round(time.Millisecond), peakRSS())
	// The alternative to an in-memory index: ask Postgres for the newest
	// version of every channel direction (what a full delta needs) and for the
	// changes of the last 24 hours with each direction's previous version.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []struct{ name, sql string }{
		{"sql-full-newest-per-direction", `SELECT count(*) FROM (SELECT DISTINCT ON (scid, direction) scid, direction, fee_base_msat
			FROM channel_updates WHERE seen < $1::timestamptz ORDER BY scid, direction, timestamp DESC) s`},
		{"sql-24h-changes-with-reference", `SELECT count(*) FROM (
			SELECT DISTINCT ON (u.scid, u.direction) u.scid, u.direction, r.fee_base_msat
			FROM channel_updates u
			LEFT JOIN LATERAL (SELECT p.fee_base_msat FROM channel_updates p
				WHERE p.scid = u.scid AND p.direction = u.direction AND p.seen < $1::timestamptz - interval '24 hours'
				ORDER BY p.timestamp DESC LIMIT 1) r ON true
			WHERE u.seen >= $1::timestamptz - interval '24 hours' AND u.seen < $1::timestamptz
			ORDER BY u.scid, u.direction, u.timestamp DESC) s`},
	} {
		b.Run(q.name, func(b *testing.B) {
			var n int64
			for b.Loop() {
				if err := conn.QueryRow(context.Background(), q.sql, ref).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "rows")
		})
	}
	// One whole snapshot generation (every scope, both versions, compressed,
	// written and published) from the loaded index.
	b.Run("snapshot-run", func(b *testing.B) {
		for b.Loop() {
			s, err := snapshot.New(snapshot.Config{Directory: b.TempDir(), Epoch: ref.Add(-30 * day)}, idx, nil, nil, persistencetest.Logger(b))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Run(context.Background(), ref); err != nil {
				b.Fatal(err)
			}
		}
	})
	if len(half) > 0 {
		// What LDK's own client ends with from a full snapshot, with the half
		// channels and without them (as lnsync served before).
		b.Run("ldk-full-with-and-without-half-channels", func(b *testing.B) {
			d, _, err := idx.Delta(time.Time{}, ref)
			if err != nil {
				b.Fatal(err)
			}
			var files [][]byte
			for _, dd := range []*rgs.Delta{d, withoutHalfRepeats(d, half)} {
				f, err := dd.Encode(rgs.Version2)
				if err != nil {
					b.Fatal(err)
				}
				files = append(files, f)
			}
			for b.Loop() {
				var runs []conformance.Run
				for _, f := range files {
					runs = append(runs, conformance.Run{Network: conformance.Mainnet, Now: uint64(ref.Unix()), Files: [][]byte{f}})
				}
				graphs, err := conformance.ApplyLDKRuns(context.Background(), runs)
				if err != nil {
					b.Fatal(err)
				}
				with, without := graphs[0], graphs[1]
				announced := 0
				for _, n := range with.Nodes {
					if n.Announcement != nil {
						announced++
					}
				}
				b.ReportMetric(float64(len(with.Channels)), "channels")
				b.ReportMetric(float64(len(with.Nodes)), "nodes")
				b.ReportMetric(float64(announced), "nodes-with-addresses")
				b.ReportMetric(float64(len(without.Channels)), "channels-without-half")
				b.ReportMetric(float64(len(without.Nodes)), "nodes-without-half")
			}
		})
	}
	for _, scope := range []struct {
		name string
		age  time.Duration
	}{{"full", 0}, {"7d", 7 * day}, {"24h", day}, {"3h", 3 * hour}} {
		for _, v := range []int{rgs.Version1, rgs.Version2} {
			b.Run(scope.name+"/v"+strconv.Itoa(v), func(b *testing.B) {
				var last time.Time
				if scope.age > 0 {
					last = ref.Add(-scope.age)
				}
				var out []byte
				var ds lookup.DeltaStats
				b.ReportAllocs()
				for b.Loop() {
					d, s, err := idx.Delta(last, ref)
					if err != nil {
						b.Fatal(err)
					}
					if out, err = d.Encode(v); err != nil {
						b.Fatal(err)
					}
					ds = s
				}
				var gz bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
				zw.Write(out)
				zw.Close()
				b.ReportMetric(float64(len(out)), "bytes")
				b.ReportMetric(float64(gz.Len()), "gzip-bytes")
				b.Logf("%s v%d: %+v", scope.name, v, ds)
				if scope.age > 0 && len(half) > 0 {
					// Every channel is older than the scope here, so a half
					// channel announced in this delta is a repeat: weigh them.
					d, _, _ := idx.Delta(last, ref)
					without := withoutHalfRepeats(d, half)
					rest, err := without.Encode(v)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(len(out)-len(rest)), "half-repeat-bytes")
				}
			})
		}
	}
}

// withoutHalfRepeats returns d without the announcements of the given channels
// that it carries, their updates and the node data of nodes that only those
// announcements brought.
func withoutHalfRepeats(d *rgs.Delta, drop map[uint64]bool) *rgs.Delta {
	out := *d
	out.Announcements, out.Updates, out.Nodes = nil, nil, nil
	dropped := map[uint64]bool{}
	keep := map[rgs.NodeID]bool{}
	for _, a := range d.Announcements {
		if drop[a.SCID] {
			dropped[a.SCID] = true
			continue
		}
		out.Announcements = append(out.Announcements, a)
		keep[a.NodeID1], keep[a.NodeID2] = true, true
	}
	for _, u := range d.Updates {
		if !dropped[u.SCID] {
			out.Updates = append(out.Updates, u)
		}
	}
	lone := map[rgs.NodeID]bool{}
	for _, a := range d.Announcements {
		if dropped[a.SCID] {
			for _, n := range []rgs.NodeID{a.NodeID1, a.NodeID2} {
				lone[n] = !keep[n]
			}
		}
	}
	for _, n := range d.Nodes {
		if !lone[n.NodeID] {
			out.Nodes = append(out.Nodes, n)
		}
	}
	return &out
}

// peakRSS reads the process's peak resident set size.
func peakRSS() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}
