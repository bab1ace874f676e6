package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnsync/lnsync/bench/gen"
	"github.com/lnsync/lnsync/bench/harness"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// TestRunWithoutHTTP runs the whole benchmark on a 300-channel, one-day
// history with the real lnsync and load peer binaries, leaving out only the
// nginx comparison, and checks the results it writes.
func TestRunWithoutHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	data := filepath.Join(dir, "history")
	topo, err := gen.LoadTopology(ctx, "../../../testdata", "2024", true)
	if err != nil {
		t.Fatal(err)
	}
	sf, nf, err := gen.LoadFrequencies("../../../testdata")
	if err != nil {
		t.Fatal(err)
	}
	n, err := gen.Build(topo, sf, nf, gen.Params{Seed: 5, Channels: 300, Days: 1, Start: gen.DefaultStart, Chain: gen.Chains["mainnet"]})
	if err != nil {
		t.Fatal(err)
	}
	m, err := gen.Generate(ctx, n, data)
	if err != nil {
		t.Fatal(err)
	}
	bins := map[string]string{"lnsync": "../../../cmd/lnsync", "loadpeer": "../lnsync-loadpeer"}
	for name, pkg := range bins {
		out := filepath.Join(dir, name)
		if b, err := exec.CommandContext(ctx, "go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		bins[name] = out
	}
	name := fmt.Sprintf("lnsync_bench_test_%d", time.Now().UnixNano())
	admin := persistencetest.AdminURL(t)
	t.Cleanup(func() { dropDatabases(t, admin, name, name+"_ingest") })

	results := filepath.Join(dir, "results.json")
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"-data", data, "-db", admin, "-database", name, "-out", filepath.Join(dir, "out"),
		"-results", results, "-lnsync", bins["lnsync"], "-loadpeer", bins["loadpeer"], "-http=false"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	var res harness.Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	total := int64(m.Totals.ChannelAnnouncements + m.Totals.ChannelUpdates + m.Totals.NodeAnnouncements)
	if res.Dataset.Messages != total || res.Load.Messages != total || res.Load.Inserted != total {
		t.Errorf("dataset %d, loaded %d, inserted %d messages; the history has %d", res.Dataset.Messages, res.Load.Messages, res.Load.Inserted, total)
	}
	if res.Ingest.Accepted != total || res.Ingest.Messages != total {
		t.Errorf("ingest accepted %d of %d, want all %d: %v", res.Ingest.Accepted, res.Ingest.Messages, total, res.Ingest.Verdicts)
	}
	if res.VerifyPerSecond <= 0 || res.Ingest.PerSecond <= 0 {
		t.Errorf("rates not measured: verify %v, ingest %v", res.VerifyPerSecond, res.Ingest.PerSecond)
	}
	if want := m.Start + 86400; res.Snapshot.Reference != want || len(res.Snapshot.Files) == 0 || res.Snapshot.PeakRSSBytes <= 0 {
		t.Errorf("snapshot at %d with %d files and peak RSS %d, want reference %d", res.Snapshot.Reference,
			len(res.Snapshot.Files), res.Snapshot.PeakRSSBytes, want)
	}
	if len(res.Deltas) != 6 || len(res.HTTP) != 0 {
		t.Errorf("%d delta figures and %d HTTP runs, want 6 and none", len(res.Deltas), len(res.HTTP))
	}
	table := stdout.String()
	for _, want := range []string{"| ingest through the load peer", "| full snapshot run", "| dynamic delta 7d", "| snapshot size full"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func dropDatabases(t *testing.T, admin string, names ...string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(ctx)
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-data", "x"},
		{"-data", t.TempDir(), "-db", "postgres://127.0.0.1:1/x", "-http-connections", "64,zero"},
		{"-data", t.TempDir(), "-db", "postgres://127.0.0.1:1/x"}, // no manifest
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
