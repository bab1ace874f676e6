package reconcile_test

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/reconcile"
	"github.com/lnsync/lnsync/reconcile/reconciletest"
	"github.com/lnsync/lnsync/server"
)

func newTestServer(t *testing.T, cfg reconcile.Config) *httptest.Server {
	t.Helper()
	db := newTestDB(t)
	ds := reconciletest.Generate(reconciletest.Config{Seed: 11, Start: t0, Duration: 2 * time.Hour, Peers: 5, PerMinute: 30,
		Delay: uniformDelay(time.Minute)})
	db.ingest(t, ds)
	svc := reconcile.New(cfg, db.pool, persistencetest.Logger(t), nil)
	srv := httptest.NewServer(mount(t, svc))
	t.Cleanup(srv.Close)
	return srv
}

// mount serves svc's routes through lnsync's HTTP server, as serve does.
func mount(t testing.TB, svc *reconcile.Service) http.Handler {
	t.Helper()
	srv := server.New(server.Options{Listen: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Logger: persistencetest.Logger(t)})
	srv.Router().Route("/v1/reconciliation", svc.Routes(srv.Handle))
	return srv.Handler()
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestHandlersRejectBadParameters(t *testing.T) {
	srv := newTestServer(t, reconcile.Config{MaxRounds: 10_000, MaxVerifyRounds: 50})
	const m, e = "/v1/reconciliation/metrics?", "/v1/reconciliation/sketch-estimate?"
	win := "from=2026-01-01T00:30:00Z&to=2026-01-01T01:30:00Z"
	for _, tc := range []struct{ path, msg string }{
		{m + "from=2026-01-01T02:00:00Z&to=2026-01-01T01:00:00Z", "from must be before to"},
		{m + "from=yesterday", "from: want RFC 3339 or Unix seconds"},
		{m + "from=-5&to=10", "from: unix time out of range"},
		{m + "from=1000000000&to=2000000000", "window longer than"},
		{m + "from=2025-01-01T00:00:00Z&to=2025-01-20T00:00:00Z", "hours of the window are not aggregated yet"},
		{m + "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&source=raw", "source=raw allows windows up to"},
		{m + win + "&source=cache", "source must be auto, raw or aggregates"},
		{m + win + "&format=xml", "format must be json or csv"},
		{m + win + "&min_share=2", "min_share must be a number in [0, 1]"},
		{m + win + "&min_peers=x", "min_peers must be an integer"},
		{m + win + "&form=1", `unknown parameter "form"`},
		{m + win + "&format=csv&format=json", `given more than once`},
		{e + win + "&bits=65", "bits must be up to 8 comma-separated integers in [2, 64]"},
		{e + win + "&bits=32,", "bits must be up to 8 comma-separated integers"},
		{e + win + "&interval=0s", "interval must be a duration between 1s and 24h"},
		{e + win + "&interval=soon", "interval must be a duration"},
		{e + win + "&q0=-1", "q0 must be a number in [0, 1]"},
		{e + win + "&alpha=NaN", "alpha must be a number"},
		{e + win + "&delta=2h", "delta must be auto or a duration between 0 and 1h"},
		{e + win + "&estimator=max", "estimator must be min or sum"},
		{e + win + "&capacity=oracle", "capacity must be margin or estimate"},
		{e + win + "&verify=maybe", "verify must be true or false"},
		{e + win + "&peer=abc", "peer must be a peer id"},
		{e + win + "&peer=99&interval=60s", "peer 99 delivered nothing"},
		{e + win + "&rounds=true", "rounds=true needs one peer, one interval and one bits value"},
		{e + "from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z", "window longer than 24h0m0s"},
		{e + win + "&interval=1s", "peer rounds exceed the limit of 10000"},
		{e + win + "&verify=true&interval=10s", "verify=true allows at most 50 peer rounds"},
	} {
		code, ctype, body := get(t, srv, tc.path)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.msg) || !strings.HasPrefix(ctype, "text/plain") {
			t.Errorf("GET %s = %d %q (%s), want 400 containing %q", tc.path, code, body, ctype, tc.msg)
		}
	}
}

func TestHandlersAnswer(t *testing.T) {
	srv := newTestServer(t, reconcile.Config{})
	t.Run("metrics json", func(t *testing.T) {
		code, _, body := get(t, srv, "/v1/reconciliation/metrics?from=2026-01-01T00:30:00Z&to=2026-01-01T01:30:00Z")
		var rep reconcile.Report
		if code != 200 || json.Unmarshal([]byte(body), &rep) != nil {
			t.Fatalf("%d %s", code, body)
		}
		all := rep.Types[len(rep.Types)-1]
		if rep.Source != "raw" || all.Unique < 1500 || all.Unique > 2100 || rep.Peers != 5 {
			t.Errorf("report: source %s, %d unique, %d peers; want raw, about 1,800, 5", rep.Source, all.Unique, rep.Peers)
		}
	})
	t.Run("metrics csv", func(t *testing.T) {
		code, ctype, body := get(t, srv, "/v1/reconciliation/metrics?from=1767227400&to=1767231000&format=csv")
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if code != 200 || err != nil || ctype != "text/csv; charset=utf-8" {
			t.Fatalf("%d %s %v", code, ctype, err)
		}
		if strings.Join(rows[0], ",") != "section,name,key,value" || len(rows) < 50 {
			t.Errorf("csv header %v, %d rows", rows[0], len(rows))
		}
		found := false
		for _, r := range rows {
			found = found || r[0] == "convergence" && r[1] == "q50" && r[2] == "mean"
		}
		if !found {
			t.Errorf("csv lacks the mean D_50 row")
		}
	})
	t.Run("empty window", func(t *testing.T) {
		for _, p := range []string{
			"/v1/reconciliation/metrics?from=2025-06-01T00:00:00Z&to=2025-06-01T01:00:00Z",
			"/v1/reconciliation/metrics?from=2025-06-01T00:00:00Z&to=2025-06-01T01:00:00Z&format=csv",
			"/v1/reconciliation/sketch-estimate?from=2025-06-01T00:00:00Z&to=2025-06-01T01:00:00Z",
		} {
			code, _, body := get(t, srv, p)
			if code != 200 || strings.Contains(body, "NaN") {
				t.Errorf("GET %s = %d %s", p, code, body)
			}
		}
		_, _, body := get(t, srv, "/v1/reconciliation/sketch-estimate?from=2025-06-01T00:00:00Z&to=2025-06-01T01:00:00Z")
		var res reconcile.EstimateResult
		if err := json.Unmarshal([]byte(body), &res); err != nil || res.Messages != 0 || len(res.Estimates) != len(reconcile.SweepIntervals) || res.Estimates[0].Rounds != 0 {
			t.Errorf("empty estimate = %s", body)
		}
	})
	t.Run("huge aggregate window", func(t *testing.T) {
		// 30 days, of which only the hours with data are computed on request…
		// none are aggregated, so the request is refused rather than slow.
		code, _, body := get(t, srv, "/v1/reconciliation/metrics?from=2025-12-10T00:00:00Z&to=2026-01-09T00:00:00Z")
		if code != 400 || !strings.Contains(body, "720 hours of the window are not aggregated yet") {
			t.Errorf("%d %s", code, body)
		}
	})
	t.Run("estimate for two element sizes", func(t *testing.T) {
		code, _, body := get(t, srv, "/v1/reconciliation/sketch-estimate?from=2026-01-01T00:30:00Z&to=2026-01-01T01:00:00Z&interval=30s&bits=32,64&delta=10s")
		var res reconcile.EstimateResult
		if code != 200 || json.Unmarshal([]byte(body), &res) != nil || len(res.Estimates) != 2 {
			t.Fatalf("%d %s", code, body)
		}
		e32, e64 := res.Estimates[0], res.Estimates[1]
		if e32.Bits != 32 || e64.Bits != 64 || e64.Bytes.Sketch != 2*e32.Bytes.Sketch || e64.Bytes.IDs != 2*e32.Bytes.IDs || e32.Bytes.Sketch == 0 {
			t.Errorf("32-bit %+v, 64-bit %+v: want the same capacities at twice the bytes", e32.Bytes, e64.Bytes)
		}
	})
	t.Run("estimate one peer with verification", func(t *testing.T) {
		code, _, body := get(t, srv, "/v1/reconciliation/sketch-estimate?from=2026-01-01T00:30:00Z&to=2026-01-01T01:00:00Z&peer=3&interval=60s&delta=auto&verify=true&rounds=true")
		var res reconcile.EstimateResult
		if code != 200 || json.Unmarshal([]byte(body), &res) != nil || len(res.Estimates) != 1 {
			t.Fatalf("%d %s", code, body)
		}
		est := res.Estimates[0]
		if est.Peer == nil || *est.Peer != 3 || est.Rounds < 29 || est.Verify == nil || est.Verify.SuccessRate != 1 || len(est.RoundDetail) != est.Rounds || est.Delta <= 0 {
			t.Errorf("estimate = %+v", est)
		}
	})
}
