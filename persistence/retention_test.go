package persistence_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

func TestPruneKeepsWhatDeltasNeed(t *testing.T) {
	t.Parallel()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	ctx := context.Background()
	w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true}, persistencetest.Logger(t))
	w.Start(ctx)

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	update := func(scid uint64, dir uint8, ts uint32, seen time.Time) *persistence.ChannelUpdate {
		return &persistence.ChannelUpdate{SCID: scid, Direction: dir, Timestamp: ts, MessageFlags: 1, ChannelFlags: dir,
			Signed: []byte{byte(scid), dir, byte(ts)}, ReceivedAt: seen}
	}
	announce := func(scid uint64, seen time.Time) *persistence.ChannelAnnouncement {
		a := &persistence.ChannelAnnouncement{SCID: scid, Features: []byte{}, Signed: []byte{byte(scid)}, ReceivedAt: seen}
		a.NodeID1[0], a.NodeID2[0] = 2, 3
		return a
	}
	const live, dead = 1 << 40, 2 << 40
	old := now.Add(-60 * day)
	recs := []persistence.Record{
		announce(live, old), announce(dead, old),
		// live channel, direction 0: three old versions and one recent.
		update(live, 0, uint32(old.Unix()), old),
		update(live, 0, uint32(old.Unix())+2, old.Add(time.Hour)),   // newest before the cut-off by timestamp...
		update(live, 0, uint32(old.Unix())+1, old.Add(2*time.Hour)), // ...although this one was seen later
		update(live, 0, uint32(now.Unix())-3600, now.Add(-time.Hour)),
		// live channel, direction 1: only old versions; the newest must survive.
		update(live, 1, uint32(old.Unix()), old),
		update(live, 1, uint32(old.Unix())+5, old.Add(time.Minute)),
		// dead channel: silent for 60 days.
		update(dead, 0, uint32(old.Unix()), old),
		update(dead, 1, uint32(old.Unix()), old),
		&persistence.Receipt{ReceivedAt: now.Add(-20 * day), PeerID: 1, MsgHash: 1, MsgType: 258, Size: 138},
		&persistence.Receipt{ReceivedAt: now.Add(-1 * day), PeerID: 1, MsgHash: 2, MsgType: 258, Size: 138},
	}
	for _, r := range recs {
		if err := w.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	w.Stop()

	res, err := store.Prune(ctx, now, persistence.RetentionConfig{History: 35 * day, Receipts: 14 * day})
	if err != nil {
		t.Fatal(err)
	}
	if res.Channels != 1 || res.Updates != 3 || res.ReceiptPartitions != 1 {
		t.Errorf("prune result %+v, want 1 channel, 3 updates, 1 receipt partition", res)
	}
	conn := openPool(t, url)
	rows, err := conn.Query(ctx, "SELECT scid, direction, timestamp FROM channel_updates ORDER BY scid, direction, timestamp")
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		scid int64
		dir  int16
		ts   int64
	}
	var got []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.scid, &k.dir, &k.ts); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	want := []key{
		{live, 0, old.Unix() + 2},
		{live, 0, now.Unix() - 3600},
		{live, 1, old.Unix() + 5},
	}
	if len(got) != len(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("kept[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if n := count(t, conn, "SELECT count(*) FROM channel_announcements"); n != 1 {
		t.Errorf("announcements = %d, want the live one", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM receipts"); n != 1 {
		t.Errorf("receipts = %d, want the one within 14 days", n)
	}
	// Partitions for the days ahead exist so the live writer need not create them.
	if n := count(t, conn, "SELECT count(*) FROM pg_tables WHERE tablename = $1", "receipts_p"+now.Add(2*day).Format("20060102")); n != 1 {
		t.Errorf("partition two days ahead missing")
	}
	// A second prune finds nothing more.
	res, err = store.Prune(ctx, now, persistence.RetentionConfig{History: 35 * day, Receipts: 14 * day})
	if err != nil || res != (persistence.PruneResult{}) {
		t.Errorf("second prune = %+v, %v; want nothing", res, err)
	}
}

func TestRetentionJobRunsAtStartAndReportsCutoff(t *testing.T) {
	t.Parallel()
	store := persistencetest.NewStore(t)
	job := persistence.NewRetentionJob(store, persistence.RetentionConfig{History: 35 * 24 * time.Hour, Receipts: 14 * 24 * time.Hour}, time.Hour, persistencetest.Logger(t))
	got := make(chan time.Time, 1)
	job.AfterPrune = func(live, imported time.Time) {
		if !imported.IsZero() {
			t.Errorf("imported cut-off %v; want none (kept for good)", imported)
		}
		got <- live
	}
	job.Start(context.Background())
	defer job.Stop()
	select {
	case cutoff := <-got:
		if age := time.Since(cutoff); age < 35*24*time.Hour-time.Minute || age > 35*24*time.Hour+time.Minute {
			t.Errorf("cut-off %v is %v ago, want 35 days", cutoff, age)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not prune at start")
	}
}

// TestImportedRowsArePrunedOnlyAfterAWarning stores the same old history
// twice, once as live gossip and once imported: retention.history prunes the
// live copy at once; the imported copy is kept while retention.imported is
// zero, and with a window it is announced by a warning at one run and
// pruned at the next.
func TestImportedRowsArePrunedOnlyAfterAWarning(t *testing.T) {
	t.Parallel()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	old := now.Add(-60 * day)
	// put stores channel base with three versions per direction, the newest
	// recent, live or imported.
	put := func(base uint64, imported bool) {
		w := persistence.NewWriter(store, persistence.WriterConfig{KeepReceiveTimes: true, Imported: imported}, persistencetest.Logger(t))
		w.Start(ctx)
		scid := base << 40
		a := &persistence.ChannelAnnouncement{SCID: scid, Features: []byte{}, Signed: []byte{byte(base)}, ReceivedAt: old}
		a.NodeID1[0], a.NodeID2[0] = 2, 3
		recs := []persistence.Record{a}
		for i := range 3 { // three versions per direction, the newest recent
			for dir := range uint8(2) {
				seen := old.Add(time.Duration(i) * time.Hour)
				if i == 2 {
					seen = now.Add(-time.Hour)
				}
				recs = append(recs, &persistence.ChannelUpdate{SCID: scid, Direction: dir, Timestamp: uint32(seen.Unix()), MessageFlags: 1,
					ChannelFlags: dir, Signed: []byte{byte(base), dir, byte(i)}, ReceivedAt: seen})
			}
		}
		for _, r := range recs {
			if err := w.Submit(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		w.Stop()
	}
	put(1, false)
	put(2, true)
	conn := openPool(t, url)
	rows := func(imported bool) int64 {
		return count(t, conn, "SELECT count(*) FROM channel_updates WHERE imported = $1", imported)
	}

	kept := persistence.NewRetentionJob(store, persistence.RetentionConfig{History: 35 * day, Receipts: 14 * day}, time.Hour, persistencetest.Logger(t))
	kept.RunAt(ctx, now)
	// Per direction the recent version and the newest before the cut-off stay.
	if rows(false) != 4 || rows(true) != 6 {
		t.Fatalf("with retention.imported = 0: %d live and %d imported updates left; want 4 and all 6", rows(false), rows(true))
	}

	var logs bytes.Buffer
	job := persistence.NewRetentionJob(store, persistence.RetentionConfig{History: 35 * day, Receipts: 14 * day, Imported: 30 * day},
		time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	job.RunAt(ctx, now)
	if rows(true) != 6 {
		t.Errorf("imported rows pruned at the run that warned about them: %d left", rows(true))
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "imported rows older than retention.imported will be pruned") ||
		!strings.Contains(logs.String(), "rows=2") {
		t.Errorf("no warning naming the imported rows to prune:\n%s", logs.String())
	}
	// An import of old data after the warning: more rows lie below the
	// cut-off than were announced, so none goes before a new warning.
	put(3, true)
	logs.Reset()
	job.RunAt(ctx, now.Add(time.Hour))
	if rows(true) != 12 || !strings.Contains(logs.String(), "rows=4") {
		t.Errorf("after an import of old data: %d imported updates left (want all 12) and warning\n%s", rows(true), logs.String())
	}
	logs.Reset()
	job.RunAt(ctx, now.Add(2*time.Hour))
	if rows(true) != 8 {
		t.Errorf("after the warned run: %d imported updates left; want 8, 4 per channel as live", rows(true))
	}
	if strings.Contains(logs.String(), "will be pruned") {
		t.Errorf("warned again with nothing left to prune:\n%s", logs.String())
	}
}
