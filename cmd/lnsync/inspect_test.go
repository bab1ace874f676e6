package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lnsync/lnsync/rgs"
)

func TestCmdInspect(t *testing.T) {
	vectors := filepath.Join("..", "..", "rgs", "testdata", "vectors")
	// A gzip sibling, as lnsync publishes next to every file.
	plain, err := os.ReadFile(filepath.Join(vectors, "v1_valid_rgs_binary.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	gzPath := filepath.Join(t.TempDir(), "full.bin.gz")
	if err := os.WriteFile(gzPath, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		stdin      string // file to feed on stdin
		wantErr    error
		wantJSON   bool
		wantStderr []string
	}{
		{name: "v1 file", args: []string{filepath.Join(vectors, "v1_valid_rgs_binary.bin")}, wantJSON: true,
			wantStderr: []string{"rgs v1 mainnet timestamp 1642291930 (2022-01-16T00:12:10Z)", "4 nodes", "2 announcements", "4 updates (4 full", "300 bytes"}},
		{name: "gzip sibling", args: []string{gzPath}, wantJSON: true,
			wantStderr: []string{"rgs v1 mainnet timestamp 1642291930", "4 updates (4 full", "300 bytes"}},
		{name: "v2 with config flag", args: []string{"-config", "lnsync.toml", filepath.Join(vectors, "v2_additional_data_main.bin")}, wantJSON: true,
			wantStderr: []string{"rgs v2 mainnet", "3 nodes (3 with data)", "23 trailing"}},
		{name: "stdin", args: []string{"-"}, stdin: filepath.Join(vectors, "v1_incremental.bin"), wantJSON: true,
			wantStderr: []string{"1 incremental, 1 reminders", "102 bytes"}},
		{name: "unsorted node ids warn", args: []string{filepath.Join(vectors, "v2_node_data_v0.1.bin")}, wantJSON: true,
			wantStderr: []string{"warning: announcement scid 1: node ids not ascending"}},
		{name: "truncated", args: []string{filepath.Join(vectors, "v1_clipped_input.bin")}, wantErr: rgs.ErrShortRead},
		{name: "unknown version", args: []string{filepath.Join(vectors, "v3_unknown_version.bin")}, wantErr: rgs.ErrUnknownVersion},
		{name: "missing file", args: []string{filepath.Join(vectors, "nope.bin")}, wantErr: os.ErrNotExist},
		{name: "help", args: []string{"-h"}, wantErr: flag.ErrHelp, wantStderr: []string{"usage: lnsync inspect [-config PATH] FILE|-"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stdin != "" {
				f, err := os.Open(tc.stdin)
				if err != nil {
					t.Fatal(err)
				}
				old := os.Stdin
				os.Stdin = f
				t.Cleanup(func() { os.Stdin = old; f.Close() })
			}
			var stdout, stderr bytes.Buffer
			err := cmdInspect(context.Background(), tc.args, &stdout, &stderr)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			for _, s := range tc.wantStderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q lacks %q", stderr.String(), s)
				}
			}
			if !tc.wantJSON {
				return
			}
			if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n != 0 {
				t.Errorf("summary spans %d lines", n+1)
			}
			var got struct {
				Version   int               `json:"version"`
				Timestamp uint32            `json:"timestamp"`
				Nodes     []json.RawMessage `json:"nodes"`
				Updates   []struct {
					SCID           uint64 `json:"scid"`
					ShortChannelID string `json:"short_channel_id"`
					Flags          uint8  `json:"flags"`
					Kind           string `json:"kind"`
					Values         struct {
						HTLCMaximumMsat uint64 `json:"htlc_maximum_msat"`
					} `json:"values"`
				} `json:"updates"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
			}
			if got.Version == 0 || got.Timestamp == 0 || len(got.Updates) == 0 {
				t.Errorf("json content = %+v", got)
			}
			if tc.name == "v1 file" && got.Updates[0].ShortChannelID != "563648x539x0" {
				t.Errorf("update scid %d shown as %q, want 563648x539x0", got.Updates[0].SCID, got.Updates[0].ShortChannelID)
			}
			if tc.name == "v1 file" && (got.Updates[0].SCID != 619737530008010752 || got.Updates[0].Flags != 0x3c ||
				got.Updates[0].Kind != "full" || got.Updates[0].Values.HTLCMaximumMsat != 978679000) {
				t.Errorf("first update = %+v", got.Updates[0])
			}
		})
	}
}
