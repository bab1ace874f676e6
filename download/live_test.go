package download_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/download/downloadtest"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// liveEnv is a migrated database, a live writer and a started Downloader.
type liveEnv struct {
	url    string
	store  *persistence.Store
	writer *persistence.Writer
	d      *download.Downloader
}

func startDownloader(t *testing.T, cfg download.Config) *liveEnv {
	t.Helper()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	logger := persistencetest.Logger(t)
	ctx, cancel := context.WithCancel(context.Background())
	w := persistence.NewWriter(store, persistence.WriterConfig{FlushInterval: 20 * time.Millisecond}, logger)
	w.Start(ctx)
	if cfg.CaughtUpInterval == 0 {
		cfg.CaughtUpInterval = 500 * time.Millisecond
	}
	d := download.New(cfg, store, w, logger)
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		d.Stop()
		w.Stop()
	})
	return &liveEnv{url: url, store: store, writer: w, d: d}
}

// storedGraph is the newest state of every channel and node in the database.
type storedGraph struct {
	channels map[uint64][2]string // node ids, hex
	updates  map[[2]uint64]storedPolicy
	nodes    map[string]storedNode
}

type storedPolicy struct {
	timestamp        uint32
	disabled         bool
	cltv             uint32
	minHTLC, maxHTLC uint64
	feeBase, feeRate int64
}

type storedNode struct {
	alias     string
	addresses []string
}

func readStoredGraph(t *testing.T, url string) *storedGraph {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	g := &storedGraph{channels: map[uint64][2]string{}, updates: map[[2]uint64]storedPolicy{}, nodes: map[string]storedNode{}}
	rows, _ := conn.Query(ctx, `SELECT scid, node_id_1, node_id_2 FROM channel_announcements`)
	var scid int64
	var n1, n2 []byte
	if _, err := pgx.ForEachRow(rows, []any{&scid, &n1, &n2}, func() error {
		g.channels[uint64(scid)] = [2]string{hex.EncodeToString(n1), hex.EncodeToString(n2)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rows, _ = conn.Query(ctx, `SELECT DISTINCT ON (scid, direction) scid, direction, timestamp, channel_flags, cltv_expiry_delta,
		htlc_minimum_msat, htlc_maximum_msat, fee_base_msat, fee_proportional_millionths
		FROM channel_updates ORDER BY scid, direction, timestamp DESC`)
	var dir, flags int16
	var ts, minH, maxH, base, rate int64
	var cltv int32
	if _, err := pgx.ForEachRow(rows, []any{&scid, &dir, &ts, &flags, &cltv, &minH, &maxH, &base, &rate}, func() error {
		g.updates[[2]uint64{uint64(scid), uint64(dir)}] = storedPolicy{timestamp: uint32(ts), disabled: flags&2 != 0,
			cltv: uint32(cltv), minHTLC: uint64(minH), maxHTLC: uint64(maxH), feeBase: base, feeRate: rate}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rows, _ = conn.Query(ctx, `SELECT DISTINCT ON (node_id) node_id, alias, addresses FROM node_announcements ORDER BY node_id, timestamp DESC`)
	var id, alias, addrs []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &alias, &addrs}, func() error {
		g.nodes[hex.EncodeToString(id)] = storedNode{alias: string(bytes.TrimRight(alias, "\x00")), addresses: decodeAddrs(t, addrs)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return g
}

// decodeAddrs decodes stored address descriptors with lnwire.
func decodeAddrs(t *testing.T, raw []byte) []string {
	t.Helper()
	buf := binary.BigEndian.AppendUint16(nil, uint16(len(raw)))
	var addrs []net.Addr
	if err := lnwire.ReadElement(bytes.NewReader(append(buf, raw...)), &addrs); err != nil {
		t.Fatalf("stored addresses %x: %v", raw, err)
	}
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// diffGraph lists how the stored graph differs from lnd's.
func diffGraph(want *downloadtest.Graph, got *storedGraph) []string {
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, sprintf(format, args...)) }
	if len(got.channels) != len(want.Channels) {
		add("%d channels stored, lnd has %d", len(got.channels), len(want.Channels))
	}
	for _, ch := range want.Channels {
		nodes, ok := got.channels[ch.ChannelID]
		if !ok {
			add("channel %d not stored", ch.ChannelID)
			continue
		}
		if nodes != [2]string{ch.Node1, ch.Node2} {
			add("channel %d has nodes %v, lnd %s %s", ch.ChannelID, nodes, ch.Node1, ch.Node2)
		}
		for dir, p := range []*downloadtest.Policy{ch.Node1Policy, ch.Node2Policy} {
			s, ok := got.updates[[2]uint64{ch.ChannelID, uint64(dir)}]
			switch {
			case p == nil:
				add("lnd lacks policy %d/%d", ch.ChannelID, dir)
			case !ok:
				add("no update stored for %d/%d", ch.ChannelID, dir)
			case s != (storedPolicy{timestamp: p.LastUpdate, disabled: p.Disabled, cltv: p.TimeLockDelta, minHTLC: uint64(p.MinHTLCMsat),
				maxHTLC: p.MaxHTLCMsat, feeBase: p.FeeBaseMsat, feeRate: p.FeeRateMilliMsat}):
				add("update %d/%d stored as %+v, lnd has %+v", ch.ChannelID, dir, s, *p)
			}
		}
	}
	if len(got.nodes) != len(want.Nodes) {
		add("%d nodes stored, lnd has %d", len(got.nodes), len(want.Nodes))
	}
	for _, n := range want.Nodes {
		s, ok := got.nodes[n.PubKey]
		switch {
		case !ok:
			add("node %s not stored", n.Alias)
		case s.alias != n.Alias || !equalStrings(s.addresses, n.Addresses):
			add("node %s stored as %+v, lnd has alias %q addresses %v", n.Alias, s, n.Alias, n.Addresses)
		}
	}
	return diffs
}

func TestDownloadFromLND(t *testing.T) {
	nw := downloadtest.StartNetwork(t, downloadtest.Options{})
	a, b := nw.Nodes[0], nw.Nodes[1]
	regtest, err := config.ChainHash("regtest")
	if err != nil {
		t.Fatal(err)
	}
	env := startDownloader(t, download.Config{
		Peers:     []config.Peer{{PubKey: a.PubKeyBytes, Addr: a.Addr}},
		ChainHash: regtest,
	})
	ctx := t.Context()

	t.Run("stored graph equals describegraph", func(t *testing.T) {
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := env.d.WaitCaughtUp(waitCtx); err != nil {
			t.Fatalf("not caught up: %v; verdicts %v", err, env.d.Verdicts().Map())
		}
		if err := env.writer.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		want, err := a.DescribeGraph(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffGraph(want, readStoredGraph(t, env.url)) {
			t.Error(d)
		}
		v := env.d.Verdicts()
		t.Logf("verdicts: %v", v.Map())
		if n := v.Total() - v.Reason(download.ReasonOK) - v.Reason(download.ReasonDuplicate); n != 0 {
			t.Errorf("%d messages from lnd dropped: %v", n, v.Map())
		}
		st := env.d.Status()
		if len(st) != 1 || !st[0].Connected || st[0].Accepted != 2+4+3 || st[0].Garbage != 0 {
			t.Errorf("status = %+v, want connected with 9 accepted", st)
		}
	})

	t.Run("fee change is stored", func(t *testing.T) {
		cp := nw.ChanPoints[1] // B's side of B–C reaches us through A
		const baseFee, feeRate, delta = 4321, 876, 120
		g, err := a.DescribeGraph(ctx)
		if err != nil {
			t.Fatal(err)
		}
		scid := g.Channel(cp).ChannelID
		start := time.Now()
		if err := b.UpdateChanPolicy(ctx, cp, baseFee, feeRate, delta); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, env.url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		const bound = 30 * time.Second
		for {
			var n int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM channel_updates WHERE scid = $1 AND fee_base_msat = $2
				AND fee_proportional_millionths = $3 AND cltv_expiry_delta = $4`, int64(scid), baseFee, feeRate, delta).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Since(start) > bound {
				t.Fatalf("fee change not stored after %s", bound)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("fee change made on B stored by lnsync (via A) in %s", time.Since(start).Round(time.Millisecond))
		// A has it too by now (it forwarded it); the graphs agree again.
		deadline := time.Now().Add(bound)
		for {
			want, err := a.DescribeGraph(ctx)
			if err != nil {
				t.Fatal(err)
			}
			diffs := diffGraph(want, readStoredGraph(t, env.url))
			if len(diffs) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("graphs differ after the fee change: %v", diffs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("snapshot applied by LDK equals lnd's graph", func(t *testing.T) {
		checkLDKSnapshot(t, env, a, regtest)
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
