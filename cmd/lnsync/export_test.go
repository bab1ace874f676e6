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
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

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

// readParquet reads a Parquet file back with parquet-go's own reader and
// returns its schema, its number of row groups and its rows.
func readParquet[R exportRow](t *testing.T, path string) (schema string, rowGroups int, rows []R) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	rows, err = parquet.ReadFile[R](path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if int64(len(rows)) != pf.NumRows() {
		t.Errorf("%s: read %d rows, footer says %d", path, len(rows), pf.NumRows())
	}
	return pf.Schema().String(), len(pf.RowGroups()), rows
}

// asCSV formats Parquet rows the way the CSV export does, header first.
func asCSV[R exportRow](rows []R) [][]string {
	out := [][]string{exportColumns[R]()}
	for _, r := range rows {
		rec := make([]string, len(out[0]))
		r.csv(rec)
		out = append(out, rec)
	}
	return out
}

// compareFiles checks that the Parquet file of a table holds exactly the rows
// and columns of its CSV file and returns its rows. The files come from two
// exports, so rows are compared in sorted order (the queries have no ORDER BY).
func compareFiles[R exportRow](t *testing.T, csvPath, parquetPath, wantSchema string) (rowGroups int, rows []R) {
	t.Helper()
	schema, rowGroups, rows := readParquet[R](t, parquetPath)
	if schema != wantSchema {
		t.Errorf("%s schema:\n%s\nwant\n%s", parquetPath, schema, wantSchema)
	}
	fromCSV, fromParquet := readCSV(t, csvPath), asCSV(rows)
	if len(fromCSV) != len(fromParquet) {
		t.Fatalf("%s has %d rows, %s %d", csvPath, len(fromCSV)-1, parquetPath, len(fromParquet)-1)
	}
	slices.SortFunc(fromCSV[1:], slices.Compare)
	slices.SortFunc(fromParquet[1:], slices.Compare)
	for i := range fromCSV {
		if !slices.Equal(fromCSV[i], fromParquet[i]) {
			t.Fatalf("row %d: csv %q, parquet %q", i, fromCSV[i], fromParquet[i])
		}
	}
	return rowGroups, rows
}

const (
	receiptsSchema = `message receiptRow {
	required int64 received_at (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	required int32 peer_id (INT(32,true));
	required int64 msg_hash (INT(64,true));
	required int32 msg_type (INT(16,true));
	required int32 size (INT(32,true));
}`
	messagesSchema = `message messageRow {
	required int64 msg_hash (INT(64,true));
	required int32 msg_type (INT(16,true));
	required int64 seen (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	optional int64 scid (INT(64,false));
	optional int32 direction (INT(16,true));
	optional binary node_id;
	optional int64 timestamp (INT(64,true));
	required int32 size (INT(32,true));
	required binary signed;
}`
	peersSchema = `message peerRow {
	required int32 peer_id (INT(32,true));
	required binary node_id;
	required binary address (STRING);
}`
)

func TestCmdExport(t *testing.T) {
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	ctx := context.Background()
	base := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	var key, key2, node [33]byte
	key[0], key2[0], key2[1], node[0], node[32] = 2, 3, 1, 2, 0xab
	peer, err := store.UpsertPeer(ctx, key, "127.0.0.1:9735")
	if err != nil {
		t.Fatal(err)
	}
	peer2, err := store.UpsertPeer(ctx, key2, "[::1]:9736")
	if err != nil {
		t.Fatal(err)
	}
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true}, persistencetest.Logger(t))
	w.Start(ctx)
	// An SCID with the top bit set is stored as a negative bigint and must
	// come out as the same unsigned number.
	ann := &persistence.ChannelAnnouncement{SCID: 1<<63 | 800000<<40 | 7, NodeID1: key, NodeID2: key2,
		Features: []byte{}, Signed: []byte("announcement\x00\xff"), ReceivedAt: base.Add(500 * time.Millisecond)}
	upd := &persistence.ChannelUpdate{SCID: 800000 << 40, Direction: 1, Timestamp: uint32(base.Unix()), MessageFlags: 1,
		ChannelFlags: 1, CLTVExpiryDelta: 40, Signed: []byte("update"), ReceivedAt: base.Add(time.Second)}
	na := &persistence.NodeAnnouncement{NodeID: node, Timestamp: uint32(base.Unix()) - 60,
		Features: []byte{}, Addresses: []byte{}, Signed: []byte("node announcement"),
		ReceivedAt: base.Add(2 * time.Second)}
	inside := &persistence.Receipt{ReceivedAt: base.Add(time.Second + 123*time.Microsecond), PeerID: peer,
		MsgHash: persistence.MessageHash(upd.Signed), MsgType: 258, Size: int32(len(upd.Signed))}
	outside := &persistence.Receipt{ReceivedAt: base.Add(2 * time.Hour), PeerID: peer, MsgHash: 7, MsgType: 257, Size: 200}
	records := []persistence.Record{ann, upd, na, inside, outside}
	// Enough receipts for two row groups and a partial batch.
	const bulk = parquetRowGroup + parquetBatch + 3
	for i := range bulk {
		records = append(records, &persistence.Receipt{ReceivedAt: base.Add(time.Minute + time.Duration(i)*time.Microsecond),
			PeerID: []int32{peer, peer2}[i%2], MsgHash: int64(i) * -7919, MsgType: uint16(256 + i%3), Size: int32(i % 1000)})
	}
	for _, r := range records {
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
	from, to := strconv.FormatInt(base.Unix(), 10), base.Add(time.Hour).Format(time.RFC3339)

	for _, tc := range []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"no window", []string{"-config", cfgPath}, "-from and -to are required"},
		{"reversed window", []string{"-config", cfgPath, "-from", to, "-to", from}, "-from must be before -to"},
		{"bad format", []string{"-config", cfgPath, "-from", from, "-to", to, "-format", "xlsx"}, `unknown -format "xlsx" (want csv or parquet)`},
		{"format in capitals", []string{"-config", cfgPath, "-from", from, "-to", to, "-format", "PARQUET"}, `unknown -format "PARQUET"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := cmdExport(ctx, tc.args, &stdout, &stderr); !errors.Is(err, errUsage) {
				t.Errorf("err = %v, want errUsage", err)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}

	export := func(t *testing.T, out, format, from, to string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := cmdExport(ctx, []string{"-config", cfgPath, "-from", from, "-to", to, "-out", out, "-format", format}, &stdout, &stderr); err != nil {
			t.Fatalf("export -format %s: %v\n%s", format, err, stderr.String())
		}
		for _, name := range []string{"receipts", "messages", "peers"} {
			if _, err := os.Stat(filepath.Join(out, name+"."+format+".tmp")); !os.IsNotExist(err) {
				t.Errorf("temporary file of %s left behind: %v", name, err)
			}
		}
	}
	out := filepath.Join(dir, "out")
	export(t, out, "csv", from, to)
	export(t, out, "parquet", from, to)
	empty := filepath.Join(dir, "empty")
	export(t, empty, "csv", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z")
	export(t, empty, "parquet", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z")

	t.Run("csv", func(t *testing.T) {
		receipts := readCSV(t, filepath.Join(out, "receipts.csv"))
		wantHeader := []string{"received_at", "peer_id", "msg_hash", "msg_type", "size"}
		wantReceipt := []string{"2026-02-01T12:00:01.000123Z", strconv.Itoa(int(peer)), strconv.FormatInt(inside.MsgHash, 10), "258", "6"}
		if len(receipts) != 2+bulk || !slices.Equal(receipts[0], wantHeader) || !slices.ContainsFunc(receipts, func(r []string) bool {
			return slices.Equal(r, wantReceipt)
		}) {
			t.Errorf("receipts.csv has %d rows, header %v; want %d rows, header %v and %v", len(receipts)-1, receipts[0], 1+bulk, wantHeader, wantReceipt)
		}
		msgs := readCSV(t, filepath.Join(out, "messages.csv"))
		slices.SortFunc(msgs[1:], func(a, b []string) int { return strings.Compare(a[2], b[2]) }) // by seen
		want := [][]string{
			{"msg_hash", "msg_type", "seen", "scid", "direction", "node_id", "timestamp", "size", "signed"},
			{strconv.FormatInt(persistence.MessageHash(ann.Signed), 10), "256", "2026-02-01T12:00:00.500000Z", strconv.FormatUint(ann.SCID, 10), "", "",
				"", strconv.Itoa(len(ann.Signed)), hex.EncodeToString(ann.Signed)},
			{strconv.FormatInt(inside.MsgHash, 10), "258", "2026-02-01T12:00:01.000000Z", strconv.FormatUint(800000<<40, 10), "1", "",
				strconv.FormatInt(base.Unix(), 10), "6", hex.EncodeToString(upd.Signed)},
			{strconv.FormatInt(persistence.MessageHash(na.Signed), 10), "257", "2026-02-01T12:00:02.000000Z", "", "", hex.EncodeToString(node[:]),
				strconv.FormatInt(base.Unix()-60, 10), strconv.Itoa(len(na.Signed)), hex.EncodeToString(na.Signed)},
		}
		if !slices.EqualFunc(msgs, want, slices.Equal) {
			t.Errorf("messages.csv = %q\nwant %q", msgs, want)
		}
		peers := readCSV(t, filepath.Join(out, "peers.csv"))
		wantPeers := [][]string{{"peer_id", "node_id", "address"},
			{strconv.Itoa(int(peer)), hex.EncodeToString(key[:]), "127.0.0.1:9735"},
			{strconv.Itoa(int(peer2)), hex.EncodeToString(key2[:]), "[::1]:9736"}}
		if !slices.EqualFunc(peers, wantPeers, slices.Equal) {
			t.Errorf("peers.csv = %q, want %q", peers, wantPeers)
		}
	})

	t.Run("parquet equals csv", func(t *testing.T) {
		groups, receipts := compareFiles[receiptRow](t, filepath.Join(out, "receipts.csv"), filepath.Join(out, "receipts.parquet"), receiptsSchema)
		if groups != 2 {
			t.Errorf("receipts.parquet has %d row groups for %d rows, want 2", groups, len(receipts))
		}
		_, msgs := compareFiles[messageRow](t, filepath.Join(out, "messages.csv"), filepath.Join(out, "messages.parquet"), messagesSchema)
		compareFiles[peerRow](t, filepath.Join(out, "peers.csv"), filepath.Join(out, "peers.parquet"), peersSchema)

		// And equals what was stored, typed.
		i := slices.IndexFunc(receipts, func(r receiptRow) bool { return r.MsgHash == inside.MsgHash })
		if i < 0 || !receipts[i].ReceivedAt.Equal(inside.ReceivedAt) || receipts[i].PeerID != peer || receipts[i].MsgType != 258 || receipts[i].Size != 6 {
			t.Errorf("receipts.parquet: receipt of the update is %+v (index %d), want %+v", receipts[min(max(i, 0), len(receipts)-1)], i, inside)
		}
		if len(msgs) != 3 {
			t.Fatalf("messages.parquet has %d rows, want 3", len(msgs))
		}
		slices.SortFunc(msgs, func(a, b messageRow) int { return a.Seen.Compare(b.Seen) })
		a, u, n := msgs[0], msgs[1], msgs[2]
		if a.SCID == nil || *a.SCID != ann.SCID || a.Direction != nil || a.Timestamp != nil || a.NodeID != nil ||
			!bytes.Equal(a.Signed, ann.Signed) || !a.Seen.Equal(ann.ReceivedAt) {
			t.Errorf("channel announcement row = %+v", a)
		}
		if u.SCID == nil || *u.SCID != upd.SCID || u.Direction == nil || *u.Direction != 1 || u.Timestamp == nil ||
			*u.Timestamp != base.Unix() || u.NodeID != nil || !bytes.Equal(u.Signed, upd.Signed) {
			t.Errorf("channel update row = %+v", u)
		}
		if n.SCID != nil || n.Direction != nil || !bytes.Equal(n.NodeID, node[:]) || n.Timestamp == nil ||
			*n.Timestamp != base.Unix()-60 || n.MsgType != 257 || n.Size != int32(len(na.Signed)) {
			t.Errorf("node announcement row = %+v", n)
		}
	})

	t.Run("empty window", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			wantRows int
			rows     func(csv, parquet string) int
		}{
			{"receipts", 0, func(c, p string) int { _, rows := compareFiles[receiptRow](t, c, p, receiptsSchema); return len(rows) }},
			{"messages", 0, func(c, p string) int { _, rows := compareFiles[messageRow](t, c, p, messagesSchema); return len(rows) }},
			{"peers", 2, func(c, p string) int { _, rows := compareFiles[peerRow](t, c, p, peersSchema); return len(rows) }},
		} {
			if n := c.rows(filepath.Join(empty, c.name+".csv"), filepath.Join(empty, c.name+".parquet")); n != c.wantRows {
				t.Errorf("%s: %d rows, want %d", c.name, n, c.wantRows)
			}
		}
	})

	// The same files read by DuckDB, against what was stored rather than
	// against what parquet-go reads back.
	t.Run("duckdb", func(t *testing.T) {
		var receipts []receiptRow
		for _, r := range records {
			if rc, ok := r.(*persistence.Receipt); ok && !rc.ReceivedAt.Before(base) && rc.ReceivedAt.Before(base.Add(time.Hour)) {
				receipts = append(receipts, receiptRow{ReceivedAt: rc.ReceivedAt, PeerID: rc.PeerID, MsgHash: rc.MsgHash,
					MsgType: int16(rc.MsgType), Size: rc.Size})
			}
		}
		direction, updTime, naTime := int16(upd.Direction), int64(upd.Timestamp), int64(na.Timestamp)
		messages := []messageRow{
			{MsgHash: persistence.MessageHash(ann.Signed), MsgType: 256, Seen: ann.ReceivedAt, SCID: &ann.SCID,
				Size: int32(len(ann.Signed)), Signed: ann.Signed},
			{MsgHash: persistence.MessageHash(upd.Signed), MsgType: 258, Seen: upd.ReceivedAt, SCID: &upd.SCID,
				Direction: &direction, Timestamp: &updTime, Size: int32(len(upd.Signed)), Signed: upd.Signed},
			{MsgHash: persistence.MessageHash(na.Signed), MsgType: 257, Seen: na.ReceivedAt, NodeID: node[:],
				Timestamp: &naTime, Size: int32(len(na.Signed)), Signed: na.Signed},
		}
		peers := []peerRow{{peer, key[:], "127.0.0.1:9735"}, {peer2, key2[:], "[::1]:9736"}}
		// Of the receipts only the update's has its message in the window:
		// peer delivered it 123µs after lnsync stored it.
		joined := [][]string{{"258", strconv.FormatUint(upd.SCID, 10), strings.ToUpper(hex.EncodeToString(key[:])), "123"}}
		checkWithDuckDB(t, []duckDBWindow{
			{name: "window", dir: out, receipts: receipts, messages: messages, peers: peers, joined: joined},
			{name: "empty window", dir: empty, peers: peers},
		})
	})
}
