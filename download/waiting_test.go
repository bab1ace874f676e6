package download_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/gsp"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// gspFile writes msgs as a GSP v1 file in dir and returns its path.
func gspFile(t *testing.T, dir, name string, msgs [][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	w := gsp.NewWriter(&buf)
	for _, m := range msgs {
		if err := w.Write(m, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func openFile(path string) (io.ReadCloser, error) { return os.Open(path) }

// TestImportKeepsMessagesForLaterAnnouncements imports the lnresearch
// capture without its channel announcements, then the announcements alone:
// the first import keeps every update and node announcement it cannot
// validate yet (verdict waiting, nothing served); the second validates those
// of its channels and nodes exactly as an import of the whole capture does,
// and a tampered update that waited is refused then.
func TestImportKeepsMessagesForLaterAnnouncements(t *testing.T) {
	t.Parallel()
	msgs := readDataset(t)
	// Beside one update of an announced channel, a copy of it with one
	// signature bit flipped: it waits like the others and must fail when
	// its channel comes.
	index := readIndex(t)
	chans := map[string]bool{}
	for _, r := range index {
		if r.typ == "256" {
			chans[r.scid] = true
		}
	}
	var anns, rest [][]byte
	tampered := false
	for i, m := range msgs {
		if index[i].typ == "256" {
			anns = append(anns, m)
			continue
		}
		rest = append(rest, m)
		if !tampered && index[i].typ == "258" && chans[index[i].scid] {
			bad := bytes.Clone(m)
			bad[10] ^= 0x01
			rest = append(rest, bad)
			tampered = true
		}
	}
	dir := t.TempDir()
	first := gspFile(t, dir, "without-announcements.gsp", rest)
	second := gspFile(t, dir, "announcements.gsp", anns)

	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	logger := persistencetest.Logger(t)
	ctx := context.Background()
	run := func(path string) download.Verdicts {
		t.Helper()
		w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, Imported: true}, logger)
		w.Start(ctx)
		defer w.Stop()
		rep, err := download.ImportFiles(ctx, download.ImportConfig{ChainHash: mainnet}, store, w, logger, []string{path}, openFile)
		if err != nil {
			t.Fatal(err)
		}
		return rep.Verdicts
	}

	v := run(first)
	want := map[string]int64{
		"channel_update/waiting":    26535 + 1,
		"node_announcement/waiting": 2251 - 3,
		"node_announcement/too_new": 3,
	}
	if got := v.Map(); !maps.Equal(got, want) {
		t.Errorf("first import: verdicts %v, want %v", got, want)
	}
	if n := len(storedHashes(t, url)); n != 0 {
		t.Errorf("first import stored %d messages; nothing can be validated without announcements", n)
	}
	upds, nodes, err := store.CountWaiting(ctx)
	if err != nil || upds != 26535+1 || nodes != 2251-3 {
		t.Errorf("waiting: %d updates, %d node announcements (%v); want %d, %d", upds, nodes, err, 26535+1, 2251-3)
	}
	// Importing the same file again waits nothing twice.
	run(first)
	if u, n, _ := store.CountWaiting(ctx); u != upds || n != nodes {
		t.Errorf("second import of the same file: %d, %d waiting; want %d, %d", u, n, upds, nodes)
	}

	v = run(second)
	want = map[string]int64{
		"channel_announcement/ok":      27,
		"channel_update/ok":            73,
		"channel_update/bad_signature": 1,
		"node_announcement/ok":         77,
	}
	if got := v.Map(); !maps.Equal(got, want) {
		t.Errorf("second import: verdicts %v, want %v", got, want)
	}
	stored := storedHashes(t, url)
	if len(stored) != 27+73+77 {
		t.Errorf("%d messages stored, want the 177 that the whole capture validates", len(stored))
	}
	u, n, err := store.CountWaiting(ctx)
	if err != nil || u != upds-74 || n != nodes-77 {
		t.Errorf("still waiting: %d updates, %d node announcements (%v); want %d, %d", u, n, err, upds-74, nodes-77)
	}
}

// TestLiveAnnouncementReleasesImportedUpdates: an update imported before
// its channel waits in the database; when a live peer's announcement of the
// channel is accepted, the live validator validates and stores it.
func TestLiveAnnouncementReleasesImportedUpdates(t *testing.T) {
	t.Parallel()
	msgs := readDataset(t)
	index := readIndex(t)
	var ann []byte
	var scid string
	for i, r := range index {
		if r.typ == "256" {
			ann, scid = msgs[i], r.scid
			break
		}
	}
	var upds [][]byte
	for i, r := range index {
		if r.typ == "258" && r.scid == scid {
			upds = append(upds, msgs[i])
		}
	}
	if len(upds) == 0 {
		t.Fatal("no update of the first channel in the capture")
	}
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	logger := persistencetest.Logger(t)
	ctx := context.Background()
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, Imported: true}, logger)
	w.Start(ctx)
	if _, err := download.ImportFiles(ctx, download.ImportConfig{ChainHash: mainnet}, store, w, logger,
		[]string{gspFile(t, t.TempDir(), "updates.gsp", upds)}, openFile); err != nil {
		t.Fatal(err)
	}
	w.Stop()
	if u, _, _ := store.CountWaiting(ctx); u != int64(len(upds)) {
		t.Fatalf("%d updates waiting, want %d", u, len(upds))
	}

	live := persistence.NewWriter(store, persistence.WriterConfig{}, logger)
	live.Start(ctx)
	defer live.Stop()
	// The live clock: the capture's time, so the time rules pass as they
	// would have when the messages were new.
	at := time.Unix(int64(mustAtoi(t, index[len(index)-1].timestamp)), 0)
	v := download.NewValidator(download.ValidatorConfig{ChainHash: mainnet, Waiting: store, Now: func() time.Time { return at }}, live, logger)
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v.Start(vctx)
	defer v.Stop()
	if err := v.Submit(ctx, download.Message{Wire: ann, At: at, From: &download.Source{PeerID: 0}}); err != nil {
		t.Fatal(err)
	}
	if err := v.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := live.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := v.Verdicts()
	if got.Get(download.KindChannelAnnouncement, download.ReasonOK) != 1 || got.Get(download.KindChannelUpdate, download.ReasonOK) == 0 {
		t.Errorf("verdicts %v; want the announcement and its waiting updates accepted", got.Map())
	}
	if u, _, _ := store.CountWaiting(ctx); u != 0 {
		t.Errorf("%d updates still waiting after their announcement", u)
	}
	if n := len(storedHashes(t, url)); int64(n) != 1+got.Get(download.KindChannelUpdate, download.ReasonOK) {
		t.Errorf("%d rows stored, want the announcement and %d updates", n, got.Get(download.KindChannelUpdate, download.ReasonOK))
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// One source cannot fill the waiting room: with room for 8 and a share of
// 2 per source, a peer sending updates of 10 unknown channels gets 2 to
// wait, and another peer's update that arrives before its announcement
// still waits, and is accepted when the announcement comes.
func TestWaitingRoomShareOfOneSource(t *testing.T) {
	t.Parallel()
	e := newWriterEnv(t)
	s := signer{t: t, chain: regtest}
	v := download.NewValidator(download.ValidatorConfig{ChainHash: regtest, PendingMax: 8, Workers: 1}, e.w, e.logger)
	ctx := t.Context()
	v.Start(ctx)
	defer v.Stop()
	flood, good := &download.Source{}, &download.Source{}
	now := time.Now()
	for i := range 10 {
		c := s.newChannel(uint64(100+i) << 40)
		if err := v.Submit(ctx, download.Message{Wire: s.update(c, 0, now, 1, nil), At: now, From: flood}); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := v.Pending(); n != 2 {
		t.Errorf("%d of the flooding peer's updates wait, want its share of 2", n)
	}
	c := s.newChannel(7 << 40)
	for _, m := range [][]byte{s.update(c, 0, now, 5, nil), s.announcement(c, false)} {
		if err := v.Submit(ctx, download.Message{Wire: m, At: now, From: good}); err != nil {
			t.Fatal(err)
		}
		if err := v.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := v.Verdicts()
	if got.Get(download.KindChannelUpdate, download.ReasonOK) != 1 || got.Get(download.KindChannelAnnouncement, download.ReasonOK) != 1 {
		t.Errorf("verdicts %v; want the second peer's announcement and update accepted", got.Map())
	}
	if n := got.Get(download.KindChannelUpdate, download.ReasonUnknownChannel); n != 8 {
		t.Errorf("%d of the flood refused at once, want 8 beyond its share", n)
	}
}
