package download_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/gsp"
	"github.com/lnsync/lnsync/gsp/gsptest"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// datasetDir is the lnresearch capture in the repository's testdata.
var datasetDir = filepath.Join("..", "testdata", "lnresearch-gsp-2025")

var mainnet = mustChain("mainnet")

func mustChain(n string) [32]byte {
	h, err := config.ChainHash(n)
	if err != nil {
		panic(err)
	}
	return h
}

// indexRow is one row of the dataset's index CSV.
type indexRow struct {
	seq       int
	typ       string
	scid      string
	direction string
	nodeIDs   []string // both nodes of an announcement, the node of a node announcement
	timestamp string
	sha       string
}

func readIndex(t testing.TB) []indexRow {
	t.Helper()
	f, err := os.Open(filepath.Join(datasetDir, "lnresearch-2025-merged.index.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []indexRow
	for i, r := range recs[1:] {
		rows = append(rows, indexRow{seq: i, typ: r[1], scid: r[3], direction: r[4], timestamp: r[5], nodeIDs: strings.Split(r[6], "|"), sha: r[8]})
	}
	return rows
}

// readDataset returns every message of the capture in file order.
func readDataset(t testing.TB) [][]byte {
	t.Helper()
	return gsptest.Messages(t, filepath.Join(datasetDir, "lnresearch-2025-merged.gsp"))
}

// importEnv is a migrated database with a running writer and validator in
// import mode.
type importEnv struct {
	url    string
	store  *persistence.Store
	writer *persistence.Writer
	v      *download.Validator
}

func newImportEnv(t testing.TB) *importEnv {
	t.Helper()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	logger := persistencetest.Logger(t)
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true}, logger)
	ctx, cancel := context.WithCancel(context.Background())
	w.Start(ctx)
	v := download.NewValidator(download.ValidatorConfig{ChainHash: mainnet, PendingMax: download.ImportPendingMax,
		PendingPerSource: download.ImportPendingMax, PendingTimeout: -1}, w, logger)
	v.Start(ctx)
	t.Cleanup(func() { v.Stop(); w.Stop(); cancel() })
	return &importEnv{url: url, store: store, writer: w, v: v}
}

// importAll imports data and waits until everything is committed.
func (e *importEnv) importAll(t testing.TB, data []byte) download.ImportStats {
	t.Helper()
	ctx := context.Background()
	st, err := download.ImportGSP(ctx, e.v, bytes.NewReader(data), &download.Source{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.v.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	e.v.ExpirePending(ctx)
	if err := e.writer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// storedHashes returns the SHA-256 (hex) of every stored signed message.
func storedHashes(t testing.TB, url string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := make(map[string]string)
	for table, typ := range map[string]string{"channel_announcements": "256", "channel_updates": "258", "node_announcements": "257"} {
		rows, err := conn.Query(ctx, "SELECT signed FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		blobs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blobs {
			sum := sha256.Sum256(b)
			h := hex.EncodeToString(sum[:])
			if _, dup := out[h]; dup {
				t.Errorf("message %s stored twice", h)
			}
			out[h] = typ
		}
	}
	return out
}

func TestImportLNResearch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(datasetDir, "lnresearch-2025-merged.gsp"))
	if err != nil {
		t.Fatal(err)
	}
	index := readIndex(t)

	// What the file itself lets us validate: its channel announcements, the
	// updates of those channels and the node announcements of their nodes.
	want := make(map[string]indexRow)
	chans := make(map[string]bool)
	nodes := make(map[string]bool)
	for _, r := range index {
		if r.typ == "256" {
			want[r.sha] = r
			chans[r.scid] = true
			nodes[r.nodeIDs[0]], nodes[r.nodeIDs[1]] = true, true
		}
	}
	var wantUpdates, wantNodes int
	for _, r := range index {
		switch {
		case r.typ == "258" && chans[r.scid]:
			want[r.sha] = r
			wantUpdates++
		case r.typ == "257" && nodes[r.nodeIDs[0]]:
			want[r.sha] = r
			wantNodes++
		}
	}

	env := newImportEnv(t)
	steps := []struct {
		name string
		data []byte
		// check compares what was stored (all steps so far) with the index,
		// and the verdicts of this step.
		check func(t *testing.T, stored map[string]string, v download.Verdicts, st download.ImportStats)
	}{
		{
			name: "original",
			data: raw,
			check: func(t *testing.T, stored map[string]string, v download.Verdicts, st download.ImportStats) {
				for sha, r := range want {
					if stored[sha] != r.typ {
						t.Errorf("index row %d (type %s, scid %s) not stored", r.seq, r.typ, r.scid)
					}
				}
				for sha := range stored {
					if _, ok := want[sha]; !ok {
						t.Errorf("stored message %s the file cannot validate", sha)
					}
				}
				if len(want) != 27+73+77 || wantUpdates != 73 || wantNodes != 77 {
					t.Errorf("index: %d messages to store (%d updates, %d nodes), want 177 (73, 77)", len(want), wantUpdates, wantNodes)
				}
				// Three node announcements are stamped a week after the rest
				// of the capture; none of their nodes has a channel here.
				wantV := map[string]int64{
					"channel_announcement/ok":        27,
					"channel_update/ok":              73,
					"channel_update/unknown_channel": 26535 - 73,
					"node_announcement/ok":           77,
					"node_announcement/too_new":      3,
					"node_announcement/no_channel":   2251 - 77 - 3,
				}
				if got := v.Map(); !maps.Equal(got, wantV) {
					t.Errorf("verdicts = %v, want %v", got, wantV)
				}
				if st.Messages != int64(len(index)) {
					t.Errorf("read %d messages, index has %d", st.Messages, len(index))
				}
			},
		},
		{
			name: "one flipped byte per message",
			data: flipEach(t, raw),
			check: func(t *testing.T, stored map[string]string, v download.Verdicts, st download.ImportStats) {
				if len(stored) != len(want) {
					t.Errorf("%d messages stored after the flipped copy, want the original %d", len(stored), len(want))
				}
				for sha := range stored {
					if _, ok := want[sha]; !ok {
						t.Errorf("flipped message %s stored", sha)
					}
				}
				if n := v.Reason(download.ReasonOK); n != 0 {
					t.Errorf("%d flipped messages accepted", n)
				}
				if v.Total() != st.Messages {
					t.Errorf("%d verdicts for %d messages", v.Total(), st.Messages)
				}
				// Updates of the channels now known are checked against
				// their keys; flipped node announcements against theirs.
				if n := v.Get(download.KindNodeAnnouncement, download.ReasonBadSignature); n < 2000 {
					t.Errorf("only %d flipped node announcements counted bad_signature", n)
				}
				if n := v.Get(download.KindChannelUpdate, download.ReasonBadSignature); n < 40 {
					t.Errorf("only %d flipped updates of known channels counted bad_signature", n)
				}
			},
		},
	}
	var before download.Verdicts
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			start := time.Now()
			stats := env.importAll(t, step.data)
			after := env.v.Verdicts()
			v := after.Sub(before)
			before = after
			t.Logf("%d messages in %s, skipped %+v, clock %s … %s; verdicts %v", stats.Messages, time.Since(start).Round(time.Millisecond),
				stats.Skipped, stats.FirstTime.Format(time.RFC3339), stats.LastTime.Format(time.RFC3339), v.Map())
			step.check(t, storedHashes(t, env.url), v, stats)
		})
	}
}

// flipEach returns a GSP stream of every dataset message with one byte after
// the type flipped, at a position that varies from message to message.
func flipEach(t *testing.T, raw []byte) []byte {
	t.Helper()
	rd := gsp.NewReader(bytes.NewReader(raw))
	rd.Resync = true
	var buf bytes.Buffer
	w := gsp.NewWriter(&buf)
	for i := 0; ; i++ {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		msg := bytes.Clone(rec.Msg)
		pos := 2 + (i*7919)%(len(msg)-2)
		msg[pos] ^= 0x01 << (i % 8)
		if err := w.Write(msg, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
