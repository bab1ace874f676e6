package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCmdExport(t *testing.T) {
	url := persistencetest.NewDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	ctx := context.Background()
	base := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	var key [33]byte
	key[0] = 2
	peer, err := store.UpsertPeer(ctx, key, "127.0.0.1:9735")
	if err != nil {
		t.Fatal(err)
	}
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true}, persistencetest.Logger(t))
	w.Start(ctx)
	upd := &persistence.ChannelUpdate{SCID: 800000 << 40, Direction: 1, Timestamp: uint32(base.Unix()), MessageFlags: 1,
		ChannelFlags: 1, CLTVExpiryDelta: 40, Signed: []byte("update"), ReceivedAt: base.Add(time.Second)}
	inside := &persistence.Receipt{ReceivedAt: base.Add(time.Second + 123*time.Microsecond), PeerID: peer,
		MsgHash: persistence.MessageHash(upd.Signed), MsgType: 258, Size: int32(len(upd.Signed))}
	outside := &persistence.Receipt{ReceivedAt: base.Add(2 * time.Hour), PeerID: peer, MsgHash: 7, MsgType: 257, Size: 200}
	for _, r := range []persistence.Record{upd, inside, outside} {
		if err := w.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	w.Stop()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte("network = \"mainnet\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LNSYNC_DATABASE_URL", url)
	out := filepath.Join(dir, "out")
	from, to := strconv.FormatInt(base.Unix(), 10), base.Add(time.Hour).Format(time.RFC3339)

	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"no window", []string{"-config", cfgPath}, errUsage},
		{"reversed window", []string{"-config", cfgPath, "-from", to, "-to", from}, errUsage},
		{"bad format", []string{"-config", cfgPath, "-from", from, "-to", to, "-format", "xlsx"}, errUsage},
		{"parquet", []string{"-config", cfgPath, "-from", from, "-to", to, "-format", "parquet"}, errNoParquet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := cmdExport(ctx, tc.args, &stdout, &stderr); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}

	var stdout, stderr bytes.Buffer
	if err := cmdExport(ctx, []string{"-config", cfgPath, "-from", from, "-to", to, "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	receipts := readCSV(t, filepath.Join(out, "receipts.csv"))
	wantReceipt := []string{"2026-02-01T12:00:01.000123Z", strconv.Itoa(int(peer)), strconv.FormatInt(inside.MsgHash, 10), "258", "6"}
	if len(receipts) != 2 || !slices.Equal(receipts[1], wantReceipt) {
		t.Errorf("receipts.csv = %v, want the header and %v", receipts, wantReceipt)
	}
	msgs := readCSV(t, filepath.Join(out, "messages.csv"))
	wantMsg := []string{strconv.FormatInt(inside.MsgHash, 10), "258", "2026-02-01T12:00:01.000000Z", strconv.FormatUint(800000<<40, 10), "1", "",
		strconv.FormatInt(base.Unix(), 10), "6", hex.EncodeToString(upd.Signed)}
	if len(msgs) != 2 || !slices.Equal(msgs[1], wantMsg) {
		t.Errorf("messages.csv = %v, want the header and %v", msgs, wantMsg)
	}
	peers := readCSV(t, filepath.Join(out, "peers.csv"))
	if len(peers) != 2 || peers[1][1] != hex.EncodeToString(key[:]) {
		t.Errorf("peers.csv = %v", peers)
	}
	if _, err := os.Stat(filepath.Join(out, "receipts.csv.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}
