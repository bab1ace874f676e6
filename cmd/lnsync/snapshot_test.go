package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/bench/gen"
	"github.com/lnsync/lnsync/conformance"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/rgs"
	"github.com/lnsync/lnsync/server"
	"github.com/lnsync/lnsync/snapshot"
	"github.com/lnsync/lnsync/snapshot/snapshottest"
)

func TestCmdSnapshotFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr error
		stderr  string
	}{
		{"help", []string{"-h"}, flag.ErrHelp, "Usage: lnsync snapshot"},
		{"bad -at", []string{"-at", "yesterday"}, errUsage, `-at "yesterday"`},
		{"unknown flag", []string{"-bogus"}, errUsage, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := cmdSnapshot(context.Background(), tt.args, &stdout, &stderr)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1768014000", 1768014000, true},
		{"2026-01-10T03:00:00Z", 1768014000, true},
		{"0", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got.Unix() != tt.want) {
			t.Errorf("parseTime(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// TestSnapshotEndToEndImport imports a generated, validly signed gossip
// history with `lnsync import`, then checks what an ldk-node client ends up
// with against the stored truth (see ldkNodeSync).
func TestSnapshotEndToEndImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	topo, err := gen.LoadTopology(ctx, datasetsDir, "2024", false)
	if err != nil {
		t.Fatal(err)
	}
	scidFreq, nodeFreq, err := gen.LoadFrequencies(datasetsDir)
	if err != nil {
		t.Fatal(err)
	}
	channels, err := gen.ResolveScale("tiny", len(topo.Channels))
	if err != nil {
		t.Fatal(err)
	}
	network, err := gen.Build(topo, scidFreq, nodeFreq, gen.Params{Seed: 3, Channels: channels, Days: 2, Start: gen.DefaultStart, Chain: gen.Chains["mainnet"]})
	if err != nil {
		t.Fatal(err)
	}
	gsps := t.TempDir()
	man, err := gen.Generate(ctx, network, gsps)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range man.Files {
		files = append(files, filepath.Join(gsps, f.Name))
	}

	dbURL := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, dbURL)
	e := newEndToEnd(t, dbURL)
	var stdout, stderr bytes.Buffer
	if err := cmdImport(ctx, append([]string{"-config", e.cfgPath}, files...), &stdout, &stderr); err != nil {
		t.Fatalf("lnsync import: %v\n%s", err, stderr.String())
	}
	t.Logf("lnsync import:\n%s", stdout.String())

	start := time.Unix(gen.DefaultStart, 0).UTC()
	r1 := start.Add(24 * time.Hour)
	graphs := e.ldkNodeSync(r1, r1.Add(3*time.Hour), r1.Add(12*time.Hour))
	truth := storedTruth(t, store, r1.Add(12*time.Hour))
	if len(truth) < channels*9/10 {
		t.Fatalf("only %d live channels stored of %d generated", len(truth), channels)
	}
	for _, g := range graphs {
		t.Run(g.name, func(t *testing.T) {
			if diffs := diffGraph(g.graph, truth); len(diffs) > 0 {
				t.Errorf("%d differences between LDK's graph and the stored truth, first ones:\n  %s",
					len(diffs), strings.Join(diffs[:min(len(diffs), 15)], "\n  "))
			}
		})
	}
}

// TestSnapshotEndToEndSynthetic does the same with a larger history stored
// through the Writer, with frequent fee, limit and disable changes and node
// address changes, and also checks node addresses in version 2.
func TestSnapshotEndToEndSynthetic(t *testing.T) {
	t.Parallel()
	dbURL := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, dbURL)
	logger := persistencetest.Logger(t)

	r3 := snapshot.ReferenceFor(time.Now(), snapshot.Grid).Add(-3 * time.Hour)
	r2 := r3.Add(-9 * time.Hour)
	r1 := r2.Add(-3 * time.Hour)
	hist := snapshottest.GenerateHistory(snapshottest.HistoryConfig{
		Channels: 300, Nodes: 150, From: r1.Add(-10 * 24 * time.Hour), To: r3,
		NewShare: 0.15, UpdateEvery: 8 * time.Hour, KeepAlive: 12 * time.Hour, Seed: 7,
	})
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, FlushInterval: 10 * time.Millisecond}, logger)
	w.Start(context.Background())
	if err := hist.Submit(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	w.Stop()

	e := newEndToEnd(t, dbURL)
	graphs := e.ldkNodeSync(r1, r2, r3)
	truth := storedTruth(t, store, r3)
	if len(truth) < 250 {
		t.Fatalf("only %d live channels in the stored truth", len(truth))
	}
	addrs := hist.NodeAddresses(r3)
	for _, g := range graphs {
		t.Run(g.name, func(t *testing.T) {
			diffs := diffGraph(g.graph, truth)
			if g.version == rgs.Version2 {
				diffs = append(diffs, diffAddresses(g.graph, addrs)...)
			}
			if len(diffs) > 0 {
				t.Errorf("%d differences between LDK's graph and the stored truth, first ones:\n  %s",
					len(diffs), strings.Join(diffs[:min(len(diffs), 15)], "\n  "))
			}
		})
	}
}

// datasetsDir is the repository's testdata directory, whose topology the generator samples.
var datasetsDir = filepath.Join("..", "..", "testdata")

func storedTruth(t *testing.T, store *persistence.Store, at time.Time) map[uint64]*snapshottest.ChannelTruth {
	t.Helper()
	h, err := snapshottest.ReadHistory(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	return h.Channels(at)
}

// endToEnd is a snapshot directory served over HTTP, filled by `lnsync
// snapshot` with a config naming the test database.
type endToEnd struct {
	t       *testing.T
	cfgPath string
	cat     *snapshot.Catalog
	base    string
}

func newEndToEnd(t *testing.T, dbURL string) *endToEnd {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "lnsync.toml")
	cfgText := fmt.Sprintf("network = \"mainnet\"\n[database]\nurl = %q\n[snapshot]\ndirectory = %q\n", dbURL, dir)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	logger := persistencetest.Logger(t)
	cat := snapshot.NewCatalog(dir, 0, logger)
	srv := server.New(server.Options{Listen: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Logger: logger, Snapshots: cat})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &endToEnd{t: t, cfgPath: cfgPath, cat: cat, base: "http://" + srv.Addr()}
}

// snapshot runs `lnsync snapshot -at r` and has the server pick it up.
func (e *endToEnd) snapshot(r time.Time) {
	t := e.t
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := cmdSnapshot(context.Background(), []string{"-config", e.cfgPath, "-at", strconv.FormatInt(r.Unix(), 10)}, &stdout, &stderr); err != nil {
		t.Fatalf("lnsync snapshot -at %d: %v\n%s", r.Unix(), err, stderr.String())
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf("generation %d", r.Unix())) {
		t.Errorf("stdout: %s", stdout.String())
	}
	t.Logf("lnsync snapshot -at %d:\n%s", r.Unix(), stdout.String())
	if err := e.cat.Reload(); err != nil {
		t.Fatal(err)
	}
}

type appliedGraph struct {
	name    string
	version int
	graph   *conformance.Graph
}

// ldkNodeSync runs generations at r1, r2 and r3 and, for each format
// version, polls the way ldk-node does — GET {base}/{last} with last the
// timestamp of the previous answer, starting at 0 — after each one: r1 gives
// the full snapshot, r2 a delta from r1, r3 a delta from r2 (from a wider
// scope when r3 - r2 is not a scope), then the empty delta. The four answers
// are applied in order with LDK's client, which must accept each; the
// resulting graphs are returned.
func (e *endToEnd) ldkNodeSync(r1, r2, r3 time.Time) []appliedGraph {
	t := e.t
	t.Helper()
	type client struct {
		prefix  string
		version int
		last    uint32
		files   [][]byte
	}
	clients := []*client{{prefix: "/snapshot/", version: rgs.Version1}, {prefix: "/snapshot/v2/", version: rgs.Version2}}
	fetch := func(c *client, wantTS time.Time) {
		t.Helper()
		resp, err := http.Get(e.base + c.prefix + strconv.FormatUint(uint64(c.last), 10))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s%d: %d %v", c.prefix, c.last, resp.StatusCode, err)
		}
		if !resp.Uncompressed {
			t.Errorf("GET %s%d was not served gzip-encoded", c.prefix, c.last)
		}
		f, err := rgs.Decode(body)
		if err != nil {
			t.Fatalf("decode %s%d: %v", c.prefix, c.last, err)
		}
		if f.Version != c.version || f.Timestamp != uint32(wantTS.Unix()) {
			t.Errorf("%s%d answered version %d timestamp %d, want %d and %d", c.prefix, c.last, f.Version, f.Timestamp, c.version, wantTS.Unix())
		}
		c.last = f.Timestamp
		c.files = append(c.files, body)
	}
	e.snapshot(r1)
	for _, c := range clients {
		fetch(c, r1)
	}
	e.snapshot(r2)
	for _, c := range clients {
		fetch(c, r2)
	}
	e.snapshot(r3)
	for _, c := range clients {
		fetch(c, r3)
		fetch(c, r3) // the empty delta
	}
	runs := make([]conformance.Run, len(clients))
	for i, c := range clients {
		runs[i] = conformance.Run{Network: conformance.Mainnet, Now: uint64(r3.Add(time.Hour).Unix()), Files: c.files}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	graphs, err := conformance.ApplyLDKRuns(ctx, runs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]appliedGraph, len(graphs))
	for i, g := range graphs {
		for j, r := range g.Results {
			if !r.OK {
				t.Errorf("%s: LDK rejected file %d: %s", clients[i].prefix, j, r.Error)
			}
		}
		out[i] = appliedGraph{name: strings.Trim(clients[i].prefix, "/"), version: clients[i].version, graph: g}
	}
	return out
}

func diffGraph(g *conformance.Graph, truth map[uint64]*snapshottest.ChannelTruth) []string {
	var diffs []string
	seen := map[uint64]bool{}
	for _, ch := range g.Channels {
		seen[ch.SCID] = true
		want := truth[ch.SCID]
		if want == nil {
			diffs = append(diffs, fmt.Sprintf("channel %d: in LDK's graph, not live in the store", ch.SCID))
			continue
		}
		if ch.NodeOne != want.Announcement.NodeID1 || ch.NodeTwo != want.Announcement.NodeID2 {
			diffs = append(diffs, fmt.Sprintf("channel %d: nodes differ", ch.SCID))
		}
		for dir, got := range []*conformance.Direction{ch.OneToTwo, ch.TwoToOne} {
			u := want.Directions[dir]
			if got == nil {
				diffs = append(diffs, fmt.Sprintf("channel %d dir %d: missing", ch.SCID, dir))
				continue
			}
			wantDir := conformance.Direction{
				Enabled: u.ChannelFlags&2 == 0, CLTVExpiryDelta: u.CLTVExpiryDelta, HTLCMinimumMsat: u.HTLCMinimumMsat,
				HTLCMaximumMsat: u.HTLCMaximumMsat, FeeBaseMsat: u.FeeBaseMsat, FeeProportionalMillionths: u.FeeProportionalMillionths,
				LastUpdate: got.LastUpdate,
			}
			if *got != wantDir {
				diffs = append(diffs, fmt.Sprintf("channel %d dir %d: LDK %+v, store %+v", ch.SCID, dir, *got, wantDir))
			}
		}
	}
	for scid := range truth {
		if !seen[scid] {
			diffs = append(diffs, fmt.Sprintf("channel %d: live in the store, missing from LDK's graph", scid))
		}
	}
	slices.Sort(diffs)
	return diffs
}

func diffAddresses(g *conformance.Graph, want map[rgs.NodeID][]rgs.Address) []string {
	var diffs []string
	for _, n := range g.Nodes {
		w, ok := want[n.NodeID]
		if !ok {
			continue
		}
		if n.Announcement == nil {
			diffs = append(diffs, fmt.Sprintf("node %s: no announcement in LDK's graph", n.NodeID))
			continue
		}
		if !slices.EqualFunc(n.Announcement.Addresses, w, func(a, b rgs.Address) bool { return bytes.Equal(a, b) }) {
			diffs = append(diffs, fmt.Sprintf("node %s: addresses %x, store %x", n.NodeID, n.Announcement.Addresses, w))
		}
	}
	return diffs
}
