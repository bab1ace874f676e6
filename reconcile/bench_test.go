package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/reconcile"
	"github.com/lnsync/lnsync/reconcile/reconciletest"
)

// BenchmarkMainnet stores receipts at mainnet rates (300 unique messages a
// minute, each delivered by 60% of the peers: 1.08M receipts an hour and 26M
// a day at 100 peers) through persistence.Writer, then times each endpoint
// over HTTP. LNSYNC_BENCH_PEERS (default 100) and LNSYNC_BENCH_HOURS
// (default 2) set the scale. With 26 hours or more every hour is aggregated
// and the 24-hour figures come from a real day; with fewer, the 24-hour
// aggregate query reads 24 copies of one real aggregated hour (the message
// rows, which dominate, do not depend on the number of peers). Run it once:
//
//	go test ./reconcile -run '^$' -bench Mainnet -benchtime 1x
func BenchmarkMainnet(b *testing.B) {
	env := func(name string, def, lo int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo {
			b.Fatalf("%s=%q: want an integer ≥ %d", name, v, lo)
		}
		return n
	}
	hours, peers := env("LNSYNC_BENCH_HOURS", 2, 2), env("LNSYNC_BENCH_PEERS", 100, 8)
	ctx := context.Background()
	db := newTestDB(b)
	ds := reconciletest.Generate(reconciletest.Config{
		Seed: 42, Start: t0, Duration: time.Duration(hours) * time.Hour, Peers: peers, PerMinute: 300,
		RelayProb: func(int32) float64 { return 0.6 },
		Delay:     func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(240 * time.Second))) },
		HoldBack:  func(p int32) time.Duration { return time.Duration(p%4) * 20 * time.Second },
	})
	recs := ds.PersistenceReceipts()
	ds.Receipts = nil
	db.ingest(b, &reconciletest.Dataset{Sessions: ds.Sessions}) // peers and sessions only

	ingested := false
	b.Run("ingest", func(b *testing.B) {
		if ingested {
			b.Skip("receipts are stored once")
		}
		ingested = true
		w := persistence.NewWriter(db.store, persistence.WriterConfig{}, persistencetest.Logger(b))
		w.Start(ctx)
		start := time.Now()
		for _, r := range recs {
			if err := w.Submit(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		w.Stop()
		b.ReportMetric(float64(len(recs))/el.Seconds(), "receipts/s")
		b.ReportMetric(float64(len(recs)), "receipts")
	})

	svc := reconcile.New(reconcile.Config{}, db.pool, persistencetest.Logger(b), nil)
	hour := t0.Add(time.Hour)
	b.Run("aggregate-hour", func(b *testing.B) {
		for range b.N {
			if err := svc.AggregateHour(ctx, hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	day := t0.Add(time.Hour)
	if hours >= 26 {
		b.Run("aggregate-day", func(b *testing.B) {
			for range b.N {
				n, err := svc.AggregatePending(ctx, t0.Add(time.Duration(hours+3)*time.Hour))
				if err != nil || n < 24 {
					b.Fatalf("aggregated %d hours: %v", n, err)
				}
				b.ReportMetric(float64(n), "hours")
			}
		})
	} else {
		// 24 aggregated hours from 1000 h later on: copies of the real one.
		day = hour.Add(1000 * time.Hour)
		for n := range 24 {
			shift := fmt.Sprintf("%d hours", 1000+n)
			for _, sql := range []string{
				`INSERT INTO receipt_agg_messages SELECT hour + $2::interval, msg_hash, first_seen + $2::interval, msg_type,
				        size, receipts, connected, delay_q, covered, gossip_ts, scid, direction, node_id, keepalive
				 FROM receipt_agg_messages WHERE hour = $1`,
				`INSERT INTO receipt_agg_peers SELECT hour + $2::interval, peer_id, delivered, eligible, relayed,
				        first_responder, bytes, lag_hist
				 FROM receipt_agg_peers WHERE hour = $1`,
				`INSERT INTO receipt_agg_hours SELECT hour + $2::interval, messages, receipts, done_at
				 FROM receipt_agg_hours WHERE hour = $1`,
			} {
				if _, err := db.pool.Exec(ctx, sql, hour, shift); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	srv := httptest.NewServer(mount(b, svc))
	defer srv.Close()
	win := func(from time.Time, d time.Duration) string {
		return "from=" + from.Format(time.RFC3339) + "&to=" + from.Add(d).Format(time.RFC3339)
	}
	type endpoint struct{ name, path string }
	endpoints := []endpoint{
		{"metrics-raw-1h", "/v1/reconciliation/metrics?source=raw&" + win(hour, time.Hour)},
		{"metrics-aggregates-24h", "/v1/reconciliation/metrics?" + win(day, 24*time.Hour)},
		{"metrics-aggregates-24h-csv", "/v1/reconciliation/metrics?format=csv&" + win(day, 24*time.Hour)},
		{"estimate-peer-60s-1h", "/v1/reconciliation/sketch-estimate?peer=7&interval=60s&delta=30s&" + win(hour, time.Hour)},
		{"estimate-peer-verify-60s-1h", "/v1/reconciliation/sketch-estimate?peer=7&interval=60s&delta=30s&verify=true&" + win(hour, time.Hour)},
		{"estimate-all-60s-1h", "/v1/reconciliation/sketch-estimate?interval=60s&delta=30s&" + win(hour, time.Hour)},
		{"estimate-all-sweep-1h", "/v1/reconciliation/sketch-estimate?delta=30s&" + win(hour, time.Hour)},
	}
	if hours >= 26 {
		endpoints = append(endpoints,
			endpoint{"estimate-peer-60s-24h", "/v1/reconciliation/sketch-estimate?peer=7&interval=60s&delta=30s&" + win(day, 24*time.Hour)},
			endpoint{"estimate-all-60s-24h", "/v1/reconciliation/sketch-estimate?interval=60s&delta=30s&" + win(day, 24*time.Hour)})
	}
	for _, ep := range endpoints {
		b.Run(ep.name, func(b *testing.B) {
			for range b.N {
				resp, err := http.Get(srv.URL + ep.path)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d %s", ep.path, resp.StatusCode, body)
				}
				b.ReportMetric(float64(len(body)), "bytes/response")
			}
		})
	}
}
