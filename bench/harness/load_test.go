package harness

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lnsync/lnsync/bench/gen"
	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/gsp"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// storedRows returns every stored gossip row as "table seen signed-hex",
// sorted, and the channel capacities known.
func storedRows(t *testing.T, store *persistence.Store) []string {
	t.Helper()
	rows, err := store.Pool().Query(context.Background(), `
		SELECT 'ann ' || extract(epoch FROM seen)::text || ' ' || encode(signed, 'hex') FROM channel_announcements
		UNION ALL
		SELECT 'upd ' || extract(epoch FROM seen)::text || ' ' || encode(signed, 'hex') FROM channel_updates
		UNION ALL
		SELECT 'node ' || extract(epoch FROM seen)::text || ' ' || encode(signed, 'hex') FROM node_announcements`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func newWriter(t *testing.T, store *persistence.Store) *persistence.Writer {
	t.Helper()
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true}, persistencetest.Logger(t))
	w.Start(context.Background())
	t.Cleanup(w.Stop)
	return w
}

// TestLoadTrustedStoresWhatImportStores loads the history once through the
// trusted path and once through `lnsync import`'s full validation: both
// databases must hold exactly the same rows, seen at the same times.
func TestLoadTrustedStoresWhatImportStores(t *testing.T) {
	ctx := context.Background()
	trusted := persistencetest.NewStore(t)
	st, nodes, err := LoadTrusted(ctx, newWriter(t, trusted), history.files, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := messages(len(history.files)); st.Messages != want {
		t.Errorf("read %d messages, the manifest says %d", st.Messages, want)
	}
	if st.Checked < st.Messages/10 {
		t.Errorf("checked %d signatures of %d messages, want at least one in ten", st.Checked, st.Messages)
	}
	if len(nodes) != history.man.Channels {
		t.Errorf("channel map has %d channels, want %d", len(nodes), history.man.Channels)
	}

	validated := persistencetest.NewStore(t)
	w := newWriter(t, validated)
	rep, err := download.ImportFiles(ctx, download.ImportConfig{ChainHash: *mainnet()}, validated, w,
		persistencetest.Logger(t), history.files, func(p string) (io.ReadCloser, error) { return os.Open(p) })
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ok := rep.Verdicts.Reason(download.ReasonOK); ok != st.Messages {
		t.Errorf("import accepted %d of %d messages (%v)", ok, st.Messages, rep.Verdicts.Map())
	}
	a, b := storedRows(t, trusted), storedRows(t, validated)
	if int64(len(a)) != st.Inserted {
		t.Errorf("LoadTrusted reports %d inserted rows, the database holds %d", st.Inserted, len(a))
	}
	if !slices.Equal(a, b) {
		t.Fatalf("trusted load and import differ: %d and %d rows", len(a), len(b))
	}
}

// TestLoadTrustedRefusesBadSignatures damages one signature of a file: a
// load that samples every message must fail and say why.
func TestLoadTrustedRefusesBadSignatures(t *testing.T) {
	dir := t.TempDir()
	in, err := os.Open(history.files[1])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, "day.gsp"))
	if err != nil {
		t.Fatal(err)
	}
	r, w := gsp.NewReader(in), gsp.NewWriter(out)
	for i := 0; ; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if i == 100 {
			rec.Msg[2+10] ^= 0x01 // inside the (first) signature
		}
		if err := w.Write(rec.Msg, rec.ReceivedAt); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	store := persistencetest.NewStore(t)
	_, _, err = LoadTrusted(context.Background(), newWriter(t, store), []string{history.files[0], out.Name()}, 1)
	if err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("err = %v, want a signature that does not verify", err)
	}
}

// TestVerifyRate checks the history's signatures on every core and fails
// on a bad one.
func TestVerifyRate(t *testing.T) {
	nodes := ChannelNodes{}
	checks, err := SignatureChecks(history.files[:2], nodes, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 500 {
		t.Fatalf("%d checks, want the 500 asked for", len(checks))
	}
	rate, err := VerifyRate(checks, 200*time.Millisecond)
	if err != nil || rate <= 0 {
		t.Fatalf("rate %v, err %v", rate, err)
	}
	bad := slices.Clone(checks)
	bad[len(bad)/2].digest = chainhash.Hash{1}
	if _, err := VerifyRate(bad, 100*time.Millisecond); err == nil {
		t.Fatal("a wrong digest verified")
	}
}

func mainnet() *chainhash.Hash {
	h := gen.Chains["mainnet"]
	return &h
}
