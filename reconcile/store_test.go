package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/reconcile"
	"github.com/lnsync/lnsync/reconcile/reconciletest"
)

// testDB is a migrated database with a pool for the reconcile package.
type testDB struct {
	store *persistence.Store
	pool  *pgxpool.Pool
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	url := persistencetest.NewMigratedDatabase(t)
	store := persistencetest.OpenMigrated(t, url)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &testDB{store: store, pool: pool}
}

// ingest stores the data set through the Writer, with its peers and sessions.
func (db *testDB) ingest(t testing.TB, ds *reconciletest.Dataset, extra ...persistence.Record) {
	t.Helper()
	ctx := context.Background()
	peers := int32(len(ds.Sessions))
	for p := int32(1); p <= peers; p++ {
		var key [33]byte
		key[0] = 2
		key[32] = byte(p)
		id, err := db.store.UpsertPeer(ctx, key, fmt.Sprintf("10.0.0.%d:9735", p))
		if err != nil || id != p {
			t.Fatalf("upsert peer %d: id %d, %v", p, id, err)
		}
		for _, iv := range ds.Sessions[p] {
			sid, err := db.store.StartPeerSession(ctx, p, time.UnixMicro(iv.From))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.store.EndPeerSession(ctx, sid, time.UnixMicro(iv.To), "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	w := persistence.NewWriter(db.store, persistence.WriterConfig{KeepReceiveTimes: true}, persistencetest.Logger(t))
	w.Start(ctx)
	for _, r := range ds.PersistenceReceipts() {
		if err := w.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range extra {
		if err := w.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.Stop()
}

func reportJSON(t *testing.T, r *reconcile.Report) string {
	t.Helper()
	r.Source = ""
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLoaderAndAggregatesAgreeWithMemory stores a generated data set, loads
// it back and checks that the loader gives the in-memory window exactly and
// that the hourly aggregates give the same report as raw receipts.
func TestLoaderAndAggregatesAgreeWithMemory(t *testing.T) {
	db := newTestDB(t)
	ds := reconciletest.Generate(reconciletest.Config{
		Seed: 9, Start: t0, Duration: 5 * time.Hour, Peers: 8, PerMinute: 40,
		Delay:    uniformDelay(10 * time.Minute),
		HoldBack: func(p int32) time.Duration { return time.Duration(p) * time.Second },
		Offline:  map[int32]reconcile.Interval{5: {From: t0.Add(150 * time.Minute).UnixMicro(), To: t0.Add(170 * time.Minute).UnixMicro()}},
	})
	db.ingest(t, ds)
	ctx := context.Background()
	st := reconcile.NewStore(db.pool)
	from, to := t0.Add(time.Hour), t0.Add(4*time.Hour)

	got, err := st.LoadWindow(ctx, from, to, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := ds.Window(from, to)
	if len(got.Messages) == 0 || !reflect.DeepEqual(got.Messages, want.Messages) || !reflect.DeepEqual(got.Peers, want.Peers) {
		t.Fatalf("loaded %d messages and peers %v, want %d and %v (or contents differ)", len(got.Messages), got.Peers, len(want.Messages), want.Peers)
	}
	if _, err := st.LoadWindow(ctx, from, to, 100); err == nil {
		t.Errorf("receipt limit of 100 not enforced")
	}
	sameDeliveries(t, st, got, from, to)
	if _, err := st.LoadDeliveries(ctx, from, to, 100); err == nil {
		t.Errorf("LoadDeliveries: receipt limit of 100 not enforced")
	}

	svc := reconcile.New(reconcile.Config{Backfill: 12 * time.Hour}, db.pool, persistencetest.Logger(t), nil)
	raw, err := svc.Metrics(ctx, from, to, reconcile.SourceRaw, reconcile.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing aggregated yet: the aggregate path summarises the hours on request.
	onRequest, err := svc.Metrics(ctx, from, to, reconcile.SourceAggregates, reconcile.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Aggregate the closed hours, twice: the second run must change nothing.
	now := t0.Add(6*time.Hour + 10*time.Minute)
	n, err := svc.AggregatePending(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := int(svc.ClosedBefore(now).Sub(now.Add(-12*time.Hour).Truncate(time.Hour)) / time.Hour); n != want {
		t.Errorf("aggregated %d hours, want %d", n, want)
	}
	if n, err := svc.AggregatePending(ctx, now); err != nil || n != 0 {
		t.Errorf("second pass aggregated %d hours (%v), want 0", n, err)
	}
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		if err := svc.AggregateHour(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	agg, err := svc.Metrics(ctx, from, to, reconcile.SourceAggregates, reconcile.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if agg.Source != reconcile.SourceAggregates || raw.Source != reconcile.SourceRaw {
		t.Errorf("sources %q and %q", agg.Source, raw.Source)
	}
	r, a, o := reportJSON(t, raw), reportJSON(t, agg), reportJSON(t, onRequest)
	if r != a || r != o {
		t.Errorf("aggregates differ from raw receipts:\nraw        %s\naggregates %s\non request %s", r, a, o)
	}
	var rows int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM receipt_agg_messages WHERE hour >= $1 AND hour < $2`, from, to).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(want.Messages) {
		t.Errorf("%d aggregate message rows, want %d", rows, len(want.Messages))
	}

	// Raw receipts expire (retention.receipts); the aggregates outlive them.
	if _, err := db.pool.Exec(ctx, `TRUNCATE receipts`); err != nil {
		t.Fatal(err)
	}
	later, err := svc.Metrics(ctx, from, to, reconcile.SourceAggregates, reconcile.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if reportJSON(t, later) != r {
		t.Errorf("aggregates changed after the raw receipts were dropped")
	}
	gone, err := svc.Metrics(ctx, from, to, reconcile.SourceRaw, reconcile.ReportOptions{})
	if err != nil || gone.Types[len(gone.Types)-1].Unique != 0 {
		t.Errorf("raw metrics after dropping receipts: %v, %v", gone, err)
	}
	if err := svc.Store().PruneAggregates(ctx, from.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	done, err := svc.Store().AggregatedHours(ctx, t0, to)
	if err != nil || len(done) != 2 || done[from.UnixMicro()] || !done[to.Add(-time.Hour).UnixMicro()] {
		t.Errorf("after pruning before %v: aggregated hours %v (%v), want the 2 hours from %v", from.Add(time.Hour), done, err, from.Add(time.Hour))
	}
}

// TestGauges checks that aggregating an hour exports its headline figures.
func TestGauges(t *testing.T) {
	db := newTestDB(t)
	ds := reconciletest.Generate(reconciletest.Config{Seed: 12, Start: t0, Duration: 2 * time.Hour, Peers: 6, PerMinute: 30,
		RelayProb: func(int32) float64 { return 1 }, Delay: uniformDelay(time.Minute)})
	db.ingest(t, ds)
	reg := prometheus.NewRegistry()
	svc := reconcile.New(reconcile.Config{}, db.pool, persistencetest.Logger(t), reg)
	hour := t0.Add(time.Hour)
	if err := svc.AggregateHour(context.Background(), hour); err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			values[name] = m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"lnsync_reconcile_peers":                             6,
		"lnsync_reconcile_redundancy/all":                    6,
		"lnsync_reconcile_peers_per_message_median":          6,
		"lnsync_reconcile_aggregated_hour_timestamp_seconds": float64(hour.Unix()),
	} {
		if values[name] != want {
			t.Errorf("%s = %v, want %v", name, values[name], want)
		}
	}
	if v := values["lnsync_reconcile_unique_messages_per_minute/all"]; v < 25 || v > 35 {
		t.Errorf("unique per minute = %v, want about 30", v)
	}
	if v := values["lnsync_reconcile_convergence_delay_seconds/0.5"]; v < 20 || v > 40 {
		t.Errorf("mean D_50 = %v, want about 30 s", v)
	}
}

// TestGossipMetrics links stored channel updates and node announcements to
// receipts by hash: update frequency, keep-alives and timestamp lag.
// sameDeliveries checks that LoadDeliveries gives window w without its
// gossip fields, and returns how many messages of w had them.
func sameDeliveries(t *testing.T, st *reconcile.Store, w *reconcile.Window, from, to time.Time) int {
	t.Helper()
	bare, err := st.LoadDeliveries(context.Background(), from, to, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(bare.Messages) != len(w.Messages) || !reflect.DeepEqual(bare.Peers, w.Peers) || !reflect.DeepEqual(bare.Sessions, w.Sessions) {
		t.Fatalf("LoadDeliveries: %d messages, peers %v; LoadWindow: %d, %v", len(bare.Messages), bare.Peers, len(w.Messages), w.Peers)
	}
	linked := 0
	for i, m := range w.Messages {
		if m.Gossip != nil {
			linked++
		}
		m.Gossip = nil
		if !reflect.DeepEqual(bare.Messages[i], m) {
			t.Fatalf("LoadDeliveries differs from LoadWindow at message %d", i)
		}
	}
	return linked
}

func TestGossipMetrics(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	base := t0.Add(30 * time.Minute)
	upd := func(scid uint64, ts uint32, fee uint32, at time.Time) *persistence.ChannelUpdate {
		return &persistence.ChannelUpdate{SCID: scid, Direction: 1, Timestamp: ts, MessageFlags: 1, ChannelFlags: 1,
			CLTVExpiryDelta: 40, HTLCMinimumMsat: 1000, FeeBaseMsat: fee, FeeProportionalMillionths: 100,
			HTLCMaximumMsat: 1e9, Signed: []byte(fmt.Sprintf("cu-%d-%d-%d", scid, ts, fee)), ReceivedAt: at}
	}
	var recs []persistence.Record
	var receipts []*persistence.Receipt
	add := func(signed []byte, typ uint16, at time.Time, peers int) {
		for p := 1; p <= peers; p++ {
			receipts = append(receipts, &persistence.Receipt{ReceivedAt: at.Add(time.Duration(p) * time.Second), PeerID: int32(p),
				MsgHash: persistence.MessageHash(signed), MsgType: typ, Size: int32(len(signed))})
		}
	}
	// SCID 1: three versions, the second a keep-alive of the first. They are
	// received 10, 20 and 30 s after their timestamps.
	for i, fee := range []uint32{1000, 1000, 2000} {
		at := base.Add(time.Duration(i) * 10 * time.Minute)
		u := upd(1, uint32(at.Unix())-10*uint32(i+1), fee, at)
		recs = append(recs, u)
		add(u.Signed, reconcile.TypeChannelUpdate, at, 3)
	}
	// SCID 2: 200 distinct updates in the hour, far above 144/day.
	for i := range 200 {
		at := base.Add(time.Duration(i) * 10 * time.Second)
		u := upd(2, uint32(at.Unix()), uint32(i), at)
		recs = append(recs, u)
		add(u.Signed, reconcile.TypeChannelUpdate, at, 2)
	}
	var node [33]byte
	node[0] = 3
	for i := range 2 {
		at := base.Add(time.Duration(i) * time.Minute)
		n := &persistence.NodeAnnouncement{NodeID: node, Timestamp: uint32(at.Unix()) - 5, Features: []byte{}, Addresses: []byte{},
			Signed: []byte(fmt.Sprintf("na-%d", i)), ReceivedAt: at}
		recs = append(recs, n)
		add(n.Signed, reconcile.TypeNodeAnnouncement, at, 4)
	}
	// A channel update whose message row is unknown.
	add([]byte("orphan"), reconcile.TypeChannelUpdate, base, 1)
	for _, r := range receipts {
		recs = append(recs, r)
	}
	sessions := make(map[int32][]reconcile.Interval)
	for p := int32(1); p <= 4; p++ {
		sessions[p] = []reconcile.Interval{{From: t0.Add(-2 * time.Hour).UnixMicro(), To: t0.Add(5 * time.Hour).UnixMicro()}}
	}
	db.ingest(t, &reconciletest.Dataset{Sessions: sessions}, recs...)

	st := reconcile.NewStore(db.pool)
	full, err := st.LoadWindow(ctx, t0, t0.Add(2*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := sameDeliveries(t, st, full, t0, t0.Add(2*time.Hour)); n != 205 {
		t.Errorf("%d messages with gossip fields, want the 205 stored", n)
	}

	svc := reconcile.New(reconcile.Config{}, db.pool, persistencetest.Logger(t), nil)
	rep, err := svc.Metrics(ctx, t0, t0.Add(2*time.Hour), reconcile.SourceRaw, reconcile.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Frequency
	if f.SCIDs != 2 || f.Updates != 203 || f.KeepAlives != 1 || f.UpdatesWithoutGossipRow != 1 || f.Nodes != 1 || f.Announcements != 2 {
		t.Fatalf("frequency = %+v", f)
	}
	within(t, "keep-alive share", f.KeepAliveShare, 1.0/203, 1e-12)
	within(t, "SCIDs above cap", f.SCIDsAboveCapShare, 0.5, 1e-12)
	within(t, "updates above cap", f.UpdatesAboveCapShare, 200.0/203, 1e-12)
	within(t, "max per SCID per day", f.MaxPerSCIDPerDay, 200*12, 1e-9)
	for _, l := range rep.TimestampLag {
		switch l.Type {
		case "node_announcement":
			// Received 5 s after the timestamp, plus the first peer's 1 s.
			if l.Messages != 2 || l.Mean != 6 {
				t.Errorf("node announcement lag = %+v, want 2 messages at 6 s", l)
			}
		case "channel_update":
			if l.Messages != 203 || l.P50 != 1 || l.Mean <= 1 {
				t.Errorf("channel update lag = %+v", l)
			}
		}
	}
	// The aggregates keep the gossip fields.
	for h := t0; h.Before(t0.Add(2 * time.Hour)); h = h.Add(time.Hour) {
		if err := svc.AggregateHour(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	agg, err := svc.Metrics(ctx, t0, t0.Add(2*time.Hour), reconcile.SourceAggregates, reconcile.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if reportJSON(t, agg) != reportJSON(t, rep) {
		t.Errorf("aggregate report differs from raw")
	}
}

// TestLoaderEstimateMatchesMemory runs the estimate on a loaded window.
func TestLoaderEstimateMatchesMemory(t *testing.T) {
	db := newTestDB(t)
	ds := reconciletest.Generate(reconciletest.Config{Seed: 10, Start: t0, Duration: 2 * time.Hour, Peers: 6, PerMinute: 30,
		Delay: func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(time.Minute))) }})
	db.ingest(t, ds)
	svc := reconcile.New(reconcile.Config{}, db.pool, persistencetest.Logger(t), nil)
	p := reconcile.DefaultEstimateParams()
	p.Delta = 20 * time.Second
	res, err := svc.Estimate(context.Background(), reconcile.EstimateRequest{From: t0.Add(30 * time.Minute), To: t0.Add(90 * time.Minute), Params: p})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Estimates) != len(reconcile.SweepIntervals) {
		t.Fatalf("%d estimates, want a sweep of %d", len(res.Estimates), len(reconcile.SweepIntervals))
	}
	w := ds.Window(t0.Add(30*time.Minute), t0.Add(90*time.Minute))
	for i, iv := range reconcile.SweepIntervals {
		p.Interval = iv
		want, err := reconcile.EstimateAll(w, p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Estimates[i], want) {
			t.Errorf("interval %v: estimate from the database differs from memory", iv)
		}
	}
}
