package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lnsync/lnsync/bench/gen"
)

const datasets = "../../../testdata"

func TestRun(t *testing.T) {
	out := t.TempDir()
	var stdout bytes.Buffer
	args := []string{"-seed", "5", "-scale", "60", "-days", "1", "-chain", "regtest", "-out", out, "-datasets", datasets}
	if err := run(t.Context(), args, &stdout); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, gen.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m gen.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Channels != 60 || m.Seed != 5 || m.Days != 1 || len(m.Files) != 2 || m.Totals.ChannelAnnouncements != 60 {
		t.Errorf("manifest %+v", m)
	}
	if m.Chain != "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206" {
		t.Errorf("chain %s, want regtest's genesis hash", m.Chain)
	}
	for _, want := range []string{"initial.gsp", "day-001.gsp", "time: build"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-out", t.TempDir(), "-chain", "testnet"},
		{"-out", t.TempDir(), "-scale", "huge", "-datasets", datasets},
		{"-out", t.TempDir(), "-topology", "2019", "-datasets", datasets},
		{"-out", t.TempDir(), "-days", "-1"},
	} {
		if err := run(t.Context(), args, new(bytes.Buffer)); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}
