package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnsync/lnsync/gsp"
	"github.com/lnsync/lnsync/gsp/gsptest"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// captureSlice derives a small GSP file from the lnresearch capture at test
// time: its first channel announcement, that channel's updates, the node
// announcements of its two nodes, five updates of other channels and a
// copy of the channel's first update with a corrupted fee, each with a receive time one minute after its
// timestamp. It returns the file and the receive time of the channel's
// first update.
func captureSlice(t *testing.T) ([]byte, time.Time, [3]int) {
	t.Helper()
	msgs := gsptest.Messages(t, filepath.Join("..", "..", "testdata", "lnresearch-gsp-2025", "lnresearch-2025-merged.gsp"))
	typ := func(m []byte) uint16 { return binary.BigEndian.Uint16(m) }
	var ann []byte
	for _, m := range msgs {
		if typ(m) == 256 {
			ann = m
			break
		}
	}
	scid := ann[2+256+2+binary.BigEndian.Uint16(ann[2+256:])+32:][:8]
	nodes := ann[2+256+2+binary.BigEndian.Uint16(ann[2+256:])+40:][:66]
	var buf bytes.Buffer
	w := gsp.NewWriter(&buf)
	at := func(m []byte, off int) time.Time {
		return time.Unix(int64(binary.BigEndian.Uint32(m[off:])), 0).Add(time.Minute)
	}
	var first time.Time
	var want [3]int // announcements, updates, nodes stored
	var others int
	var body []*struct {
		m  []byte
		at time.Time
	}
	for _, m := range msgs {
		switch {
		case typ(m) == 258 && bytes.Equal(m[2+64+32:][:8], scid):
			body = append(body, &struct {
				m  []byte
				at time.Time
			}{m, at(m, 2+64+32+8)})
			if first.IsZero() {
				first = at(m, 2+64+32+8)
				bad := bytes.Clone(m)
				bad[120] ^= 1 // corrupted fee, same channel
				body = append(body, &struct {
					m  []byte
					at time.Time
				}{bad, at(m, 2+64+32+8)})
			}
			want[1]++
		case typ(m) == 258 && others < 5:
			others++
			body = append(body, &struct {
				m  []byte
				at time.Time
			}{m, at(m, 2+64+32+8)})
		case typ(m) == 257:
			flen := int(binary.BigEndian.Uint16(m[66:]))
			id := m[66+2+flen+4:][:33]
			if bytes.Equal(id, nodes[:33]) || bytes.Equal(id, nodes[33:]) {
				body = append(body, &struct {
					m  []byte
					at time.Time
				}{m, at(m, 66+2+flen)})
				want[2]++
			}
		}
	}
	if err := w.Write(ann, first); err != nil {
		t.Fatal(err)
	}
	want[0] = 1
	for _, b := range body {
		if err := w.Write(b.m, b.at); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), first, want
}

func TestCmdImport(t *testing.T) {
	data, first, want := captureSlice(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "slice.gsp")
	if err := os.WriteFile(plain, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	compressed := filepath.Join(dir, "slice.gsp.gz")
	if err := os.WriteFile(compressed, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// A GSP file whose one record is a channel_update with a bad signature
	// and no channel: it parses, but holds nothing valid.
	junk := filepath.Join(dir, "junk.gsp")
	bad := append([]byte{0x01, 0x02}, bytes.Repeat([]byte{0x42}, 136)...)
	if err := os.WriteFile(junk, append([]byte{'G', 'S', 'P', 1, byte(len(bad))}, bad...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte("network = \"mainnet\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		wantErr    error
		wantStdout []string
		wantRows   [3]int
	}{
		{name: "no files", args: []string{"-config", cfgPath}, wantErr: errUsage},
		{name: "missing file", args: []string{"-config", cfgPath, filepath.Join(dir, "nope.gsp")}, wantErr: os.ErrNotExist},
		{name: "junk", args: []string{"-config", cfgPath, junk}, wantErr: errNothingImported},
		{
			name: "slice of the capture", args: []string{"-config", cfgPath, plain},
			wantStdout: []string{
				fmt.Sprintf("valid: 1 channel announcements, %d channel updates, %d node announcements; %d new rows", want[1], want[2], 1+want[1]+want[2]),
				"channel_update/waiting=5", "waiting: 5 messages whose channel is not stored yet are kept unverified", `retention: imported data is kept for good`, "channel_update/bad_signature=1", "clock " + first.UTC().Format("2006-01-02T15:04:05Z"),
			},
			wantRows: want,
		},
		{
			name: "same file gzipped, again", args: []string{"-config", cfgPath, compressed},
			wantStdout: []string{"; 0 new rows", "channel_announcement/duplicate=1"},
			wantRows:   want,
		},
	}
	url := persistencetest.NewDatabase(t)
	t.Setenv("LNSYNC_DATABASE_URL", url)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := cmdImport(context.Background(), tc.args, &stdout, &stderr)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v\n%s", err, stderr.String())
			}
			for _, s := range tc.wantStdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var rows [3]int
			var seen time.Time
			err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM channel_announcements), (SELECT count(*) FROM channel_updates),
				(SELECT count(*) FROM node_announcements), (SELECT seen FROM channel_announcements)`).Scan(&rows[0], &rows[1], &rows[2], &seen)
			if err != nil {
				t.Fatal(err)
			}
			if rows != tc.wantRows {
				t.Errorf("rows = %v, want %v", rows, tc.wantRows)
			}
			if !seen.Equal(first) {
				t.Errorf("announcement seen at %s, want the file's receive time %s", seen, first)
			}
		})
	}
}
