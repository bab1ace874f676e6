package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/rgs"
	"github.com/lnsync/lnsync/server"
	"github.com/lnsync/lnsync/snapshot"
	"github.com/lnsync/lnsync/snapshot/snapshottest"
)

const hour = time.Hour

// ref is the reference time of the generation most tests serve.
var ref = time.Date(2026, 1, 10, 3, 0, 0, 0, time.UTC)

// history is what the tests' databases hold: changes in every scope before
// ref.
var history = snapshottest.ScopedHistory(ref)

// newIndex returns an Index over a fresh test database holding history.
func newIndex(t *testing.T) *lookup.Index {
	t.Helper()
	return snapshottest.NewIndex(t, history)
}

// publish writes a generation for r into dir and returns a Catalog holding it.
func publish(t *testing.T, dir string, src snapshot.Source, r time.Time) *snapshot.Catalog {
	t.Helper()
	s, err := snapshot.New(snapshot.Config{Directory: dir, Epoch: r.Add(-24 * hour)}, src, nil, nil, snapshottest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	cat := snapshot.NewCatalog(dir, 0, snapshottest.Logger(t))
	if err := cat.Reload(); err != nil {
		t.Fatal(err)
	}
	return cat
}

// encoder is a server.DeltaEncoder that passes calls on to an Index,
// counting them, tracking their concurrency and holding them back at a gate.
type encoder struct {
	src                   *lookup.Index
	gate                  chan struct{} // nil: never wait
	cost                  atomic.Int64  // nanoseconds added to every computation
	calls, inflight, peak atomic.Int32
}

func (e *encoder) Encode(ctx context.Context, last, ref time.Time, v int) ([]byte, lookup.DeltaStats, error) {
	e.calls.Add(1)
	n := e.inflight.Add(1)
	defer e.inflight.Add(-1)
	for {
		p := e.peak.Load()
		if n <= p || e.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return nil, lookup.DeltaStats{}, ctx.Err()
		}
	}
	time.Sleep(time.Duration(e.cost.Load()))
	return e.src.Encode(ctx, last, ref, v)
}

type fixture struct {
	srv *server.Server
	cat *snapshot.Catalog
	src *lookup.Index
	enc *encoder
	reg *prometheus.Registry
}

// newFixture serves a generation for r published from a fresh database.
func newFixture(t *testing.T, r time.Time, opts server.Options) *fixture {
	t.Helper()
	return newFixtureFrom(t, newIndex(t), r, opts)
}

// newFixtureFrom serves a generation for r published from src.
func newFixtureFrom(t *testing.T, src *lookup.Index, r time.Time, opts server.Options) *fixture {
	t.Helper()
	f := &fixture{src: src, reg: prometheus.NewRegistry()}
	f.cat = publish(t, t.TempDir(), f.src, r)
	f.enc = &encoder{src: f.src}
	opts.Registry, opts.Logger, opts.Snapshots = f.reg, snapshottest.Logger(t), f.cat
	if opts.Dynamic == nil {
		opts.Dynamic = f.enc
	}
	f.srv = server.New(opts)
	return f
}

func (f *fixture) do(t *testing.T, method, target string, header map[string]string) *http.Response {
	t.Helper()
	return f.doFrom(t, "192.0.2.1:1234", method, target, header)
}

// doFrom is do for a client at the address remote (host:port).
func (f *fixture) doFrom(t *testing.T, remote, method, target string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = remote
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshotRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ref, server.Options{})
	g := f.cat.Current()
	r := ref.Unix()
	s := strconv.FormatInt
	tests := []struct {
		name    string
		target  string
		status  int
		version int
		ts      int64 // the timestamp whose file is expected
		kind    string
		scope   int64
	}{
		{"zero is full", "/snapshot/0", 200, 1, 0, snapshot.KindFull, 0},
		{"zero with .bin", "/snapshot/0.bin", 200, 1, 0, snapshot.KindFull, 0},
		{"v2 zero", "/snapshot/v2/0", 200, 2, 0, snapshot.KindFull, 0},
		{"at R is empty", "/snapshot/" + s(r, 10), 200, 1, r, snapshot.KindEmpty, 0},
		{"v2 at R is empty", "/snapshot/v2/" + s(r, 10), 200, 2, r, snapshot.KindEmpty, 0},
		{"after R is empty", "/snapshot/v2/" + s(r+12345, 10), 200, 2, r, snapshot.KindEmpty, 0},
		{"max u32 is empty", "/snapshot/4294967295", 200, 1, r, snapshot.KindEmpty, 0},
		{"one interval back", "/snapshot/" + s(r-3*3600, 10), 200, 1, r - 3*3600, snapshot.KindScope, 3 * 3600},
		{"off grid rounds down", "/snapshot/v2/" + s(r-3*3600-1, 10) + ".bin", 200, 2, r - 6*3600, snapshot.KindScope, 6 * 3600},
		{"double slash", "/snapshot//" + s(r-6*3600, 10), 200, 1, r - 6*3600, snapshot.KindScope, 6 * 3600},
		{"v2 double slash", "/snapshot/v2//" + s(r-9*3600, 10), 200, 2, r - 9*3600, snapshot.KindScope, 12 * 3600},
		{"older than all scopes", "/snapshot/1", 200, 1, 1, snapshot.KindFull, 0},
		{"non-numeric", "/snapshot/latest", 400, 0, 0, "", 0},
		{"negative", "/snapshot/-10800", 400, 0, 0, "", 0},
		{"huge", "/snapshot/99999999999999999999999", 400, 0, 0, "", 0},
		{"beyond u32", "/snapshot/4294967296", 400, 0, 0, "", 0},
		{"hex", "/snapshot/0x10", 400, 0, 0, "", 0},
		{"plus sign", "/snapshot/+5", 400, 0, 0, "", 0},
		{"double suffix", "/snapshot/5.bin.bin", 400, 0, 0, "", 0},
		{"encoded traversal", "/snapshot/..%2f..%2fetc%2fpasswd", 400, 0, 0, "", 0},
		{"v2 encoded traversal", "/snapshot/v2/..%2F..%2F..%2Fetc%2Fpasswd", 400, 0, 0, "", 0},
		{"encoded dots", "/snapshot/%2e%2e", 400, 0, 0, "", 0},
		{"plain traversal", "/snapshot/../../etc/passwd", 404, 0, 0, "", 0},
		{"traversal after ts", "/snapshot/0/../../manifest.json", 404, 0, 0, "", 0},
		{"no ts", "/snapshot/", 404, 0, 0, "", 0},
		{"nul byte", "/snapshot/1%00", 400, 0, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(t, "GET", tt.target, nil)
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s: status %d (%q), want %d", tt.target, resp.StatusCode, body, tt.status)
			}
			if tt.status != 200 {
				if bytes.Contains(body, []byte("root:")) || len(body) > 100 {
					t.Errorf("error body %q", body)
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("error Cache-Control %q", cc)
				}
				return
			}
			want := g.Pick(tt.version, tt.ts)
			if want.Info.Kind != tt.kind || want.Info.Scope != tt.scope {
				t.Fatalf("fixture: Pick(%d, %d) = %+v, want %s %d", tt.version, tt.ts, want.Info, tt.kind, tt.scope)
			}
			if !bytes.Equal(body, want.Data) {
				t.Errorf("%s: body is not %s", tt.target, want.Info.Name)
			}
			file, err := rgs.Decode(body)
			if err != nil || file.Version != tt.version || file.Timestamp != uint32(r) {
				t.Errorf("%s: decoded %v, %v; want version %d stamped %d", tt.target, file, err, tt.version, r)
			}
			h := resp.Header
			checks := map[string]string{
				"Content-Type":                "application/octet-stream",
				"Content-Length":              strconv.Itoa(len(want.Data)),
				"Etag":                        want.ETag,
				"Last-Modified":               g.Manifest.Created.UTC().Format(http.TimeFormat),
				"Access-Control-Allow-Origin": "*",
				"Vary":                        "Accept-Encoding",
			}
			for k, v := range checks {
				if got := h.Get(k); got != v {
					t.Errorf("%s: %s = %q, want %q", tt.target, k, got, v)
				}
			}
			cc := h.Get("Cache-Control")
			if tt.kind == snapshot.KindEmpty {
				if cc != "public, max-age=60" {
					t.Errorf("empty delta Cache-Control %q, want public, max-age=60", cc)
				}
			} else if !strings.HasPrefix(cc, "public, max-age=") || strings.Contains(cc, "immutable") {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
}

func TestConditionalAndEncoding(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ref, server.Options{})
	full := f.cat.Current().Pick(1, 0)
	created := f.cat.Current().Manifest.Created
	tests := []struct {
		name     string
		method   string
		header   map[string]string
		status   int
		body     []byte
		encoding string
	}{
		{"plain", "GET", nil, 200, full.Data, ""},
		{"gzip", "GET", map[string]string{"Accept-Encoding": "gzip, deflate, br"}, 200, full.Gzip, "gzip"},
		{"gzip refused", "GET", map[string]string{"Accept-Encoding": "gzip;q=0, identity"}, 200, full.Data, ""},
		{"wildcard", "GET", map[string]string{"Accept-Encoding": "*"}, 200, full.Gzip, "gzip"},
		{"only br", "GET", map[string]string{"Accept-Encoding": "br"}, 200, full.Data, ""},
		{"etag matches", "GET", map[string]string{"If-None-Match": full.ETag}, 304, nil, ""},
		{"weak etag in list", "GET", map[string]string{"If-None-Match": `"x", W/` + full.ETag}, 304, nil, ""},
		{"etag of other encoding", "GET", map[string]string{"If-None-Match": full.GzipETag}, 200, full.Data, ""},
		{"gzip etag matches", "GET", map[string]string{"If-None-Match": full.GzipETag, "Accept-Encoding": "gzip"}, 304, nil, "gzip"},
		{"etag differs", "GET", map[string]string{"If-None-Match": `"nope"`}, 200, full.Data, ""},
		{"not modified since", "GET", map[string]string{"If-Modified-Since": created.Add(time.Minute).UTC().Format(http.TimeFormat)}, 304, nil, ""},
		{"modified since", "GET", map[string]string{"If-Modified-Since": created.Add(-time.Minute).UTC().Format(http.TimeFormat)}, 200, full.Data, ""},
		{"etag wins over date", "GET", map[string]string{"If-None-Match": `"nope"`, "If-Modified-Since": created.Add(time.Minute).UTC().Format(http.TimeFormat)}, 200, full.Data, ""},
		{"head", "HEAD", nil, 200, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(t, tt.method, "/snapshot/0", tt.header)
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if !bytes.Equal(body, tt.body) {
				t.Errorf("body of %d bytes, want %d", len(body), len(tt.body))
			}
			if got := resp.Header.Get("Content-Encoding"); got != tt.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.encoding)
			}
			if tt.method == "HEAD" && resp.Header.Get("Content-Length") != strconv.Itoa(len(full.Data)) {
				t.Errorf("HEAD Content-Length %q", resp.Header.Get("Content-Length"))
			}
			if tt.status == 304 && resp.Header.Get("Etag") == "" {
				t.Error("304 without ETag")
			}
			if tt.encoding == "gzip" && tt.status == 200 {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := io.ReadAll(zr)
				if err != nil || !bytes.Equal(plain, full.Data) {
					t.Errorf("gzip body does not decompress to the file: %v", err)
				}
			}
		})
	}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ref, server.Options{})
	resp := f.do(t, "OPTIONS", "/snapshot/v2/0", map[string]string{"Origin": "https://wallet.example", "Access-Control-Request-Method": "GET"})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp = f.do(t, "GET", "/snapshot/v2/0", map[string]string{"Origin": "https://wallet.example"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Errorf("GET CORS headers: %v", resp.Header)
	}
}

func TestNoGenerationYet(t *testing.T) {
	t.Parallel()
	cat := snapshot.NewCatalog(t.TempDir(), 0, snapshottest.Logger(t))
	if err := cat.Reload(); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Registry: prometheus.NewRegistry(), Logger: snapshottest.Logger(t), Snapshots: cat,
		Dynamic: &encoder{src: newIndex(t)}})
	for _, target := range []string{"/snapshot/0", "/snapshot/v2/123", "/dynamic/5"} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: %d %v, want 503 with Retry-After", target, rec.Code, rec.Header())
		}
	}
}

func TestDynamic(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ref, server.Options{})
	r := ref.Unix()
	last := r - 8*3600 - 7 // rounds down to R - 9h, where no scope starts
	want, _, err := f.src.Delta(time.Unix(r-9*3600, 0), ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 2} {
		prefix := "/dynamic/"
		if v == 2 {
			prefix = "/dynamic/v2/"
		}
		wantBytes, err := want.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			resp := f.do(t, "GET", prefix+strconv.FormatInt(last, 10), nil)
			body := readAll(t, resp)
			if resp.StatusCode != 200 || !bytes.Equal(body, wantBytes) {
				t.Fatalf("v%d request %d: status %d, %d bytes; want the delta from R-9h (%d bytes)", v, i, resp.StatusCode, len(body), len(wantBytes))
			}
			if resp.Header.Get("Etag") == "" || resp.Header.Get("Content-Length") != strconv.Itoa(len(wantBytes)) {
				t.Errorf("headers %v", resp.Header)
			}
		}
	}
	if n := f.enc.calls.Load(); n != 2 {
		t.Errorf("%d computations for two keys requested three times each, want 2", n)
	}
	// What the generation holds is served from it without computing: 0, ts
	// >= R, a grid point where a scope starts, and anything older than every
	// scope.
	g := f.cat.Current()
	for _, tc := range []struct {
		target string
		want   *snapshot.File
	}{
		{"/dynamic/0", g.Pick(1, 0)},
		{"/dynamic/v2/" + strconv.FormatInt(r+5, 10), g.Pick(2, r)},
		{"/dynamic/" + strconv.FormatInt(r-6*3600+100, 10), g.Pick(1, r-6*3600)},
		{"/dynamic/v2/" + strconv.FormatInt(r-40*86400, 10), g.Pick(2, 0)},
		{"/dynamic/5", g.Pick(1, 0)},
	} {
		resp := f.do(t, "GET", tc.target, nil)
		if body := readAll(t, resp); resp.StatusCode != 200 || !bytes.Equal(body, tc.want.Data) {
			t.Errorf("%s: %d, not %s", tc.target, resp.StatusCode, tc.want.Info.Name)
		}
	}
	if n := f.enc.calls.Load(); n != 2 {
		t.Errorf("%d computations after requests the generation answers, want still 2", n)
	}
	if resp := f.do(t, "GET", "/dynamic/abc", nil); resp.StatusCode != 400 {
		t.Errorf("/dynamic/abc: %d", resp.StatusCode)
	}
}

func TestDynamicConcurrencyBound(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	src := newIndex(t)
	enc := &encoder{src: src, gate: gate}
	f := newFixtureFrom(t, src, ref, server.Options{Dynamic: enc, DynamicConcurrency: 2})
	var wg sync.WaitGroup
	hours := []int64{9, 15, 18, 21, 27, 30, 33, 36} // no scope starts there
	codes := make([]int, len(hours))
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each from its own client: one client may run one at a time.
			resp := f.doFrom(t, fmt.Sprintf("192.0.2.%d:1234", 10+i), "GET", fmt.Sprintf("/dynamic/%d", ref.Unix()-hours[i]*3600), nil)
			codes[i] = resp.StatusCode
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for enc.inflight.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // give a third computation the chance to start wrongly
	if p := enc.peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d while blocked, want 2", p)
	}
	close(gate)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if p := enc.peak.Load(); p > 2 {
		t.Errorf("peak concurrency %d, want at most 2", p)
	}
	if n := enc.calls.Load(); n != int32(len(hours)) {
		t.Errorf("%d computations for %d keys", n, len(hours))
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	now := snapshot.ReferenceFor(time.Now(), snapshot.Grid)
	tests := []struct {
		name     string
		r        time.Time
		caughtUp bool
		ready    func(context.Context) (bool, string)
		want     int
		reason   string
	}{
		{"fresh and caught up", now, true, nil, 200, ""},
		{"not caught up", now, false, nil, 503, "caught up"},
		{"database down", now, true, func(context.Context) (bool, string) { return false, "database unreachable" }, 503, "database"},
		{"one interval old", now.Add(-3 * hour), true, nil, 200, ""},
		{"two intervals old", now.Add(-6 * hour), true, nil, 503, "two intervals"},
		{"empty graph", now, true, nil, 503, "holds no channels"},
		{"empty graph without peers", now, true, nil, 503, "no peers are configured"},
		{"two intervals old, last run failed", now.Add(-6 * hour), true, nil, 503, "(more than two intervals); the snapshot run failed: disk full"},
	}
	// A history that is live at now, and one with nothing in it.
	src := snapshottest.NewIndex(t, snapshottest.ScopedHistory(now))
	empty := snapshottest.NewIndex(t, &snapshottest.History{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caught := tt.caughtUp
			idx, peers := src, 1
			if strings.HasPrefix(tt.name, "empty graph") {
				idx = empty
			}
			if tt.name == "empty graph without peers" {
				peers = 0
			}
			opts := server.Options{CaughtUp: func() bool { return caught }, Ready: tt.ready, Peers: peers}
			if strings.Contains(tt.name, "failed") {
				opts.SnapshotFailure = func() string { return "the snapshot run failed: disk full" }
			}
			f := newFixtureFrom(t, idx, tt.r, opts)
			resp := f.do(t, "GET", "/readyz", nil)
			body := readAll(t, resp)
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.reason) {
				t.Errorf("readyz %d %s, want %d mentioning %q", resp.StatusCode, body, tt.want, tt.reason)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ref, server.Options{
		Network: "mainnet", CaughtUp: func() bool { return true }, PeersConnected: func() int { return 4 },
		PeerStates: func() any {
			return []map[string]any{{"pubkey": "02aa", "connected": false, "dial_failures": 3, "last_error": "connection refused"}}
		},
		Counts: func(context.Context) (server.Counts, error) {
			return server.Counts{ChannelAnnouncements: 10, ChannelUpdates: 20, NodeAnnouncements: 5, Peers: 4}, nil
		},
	})
	resp := f.do(t, "GET", "/v1/status", nil)
	var st server.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if st.Network != "mainnet" || !st.CaughtUp || st.PeersConnected == nil || *st.PeersConnected != 4 ||
		st.Counts == nil || st.Counts.ChannelUpdates != 20 {
		t.Errorf("status %+v", st)
	}
	if st.Snapshot == nil || st.Snapshot.Reference != ref.Unix() || st.Snapshot.FullBytesV1 == 0 || st.Snapshot.IntervalSeconds != 10800 {
		t.Errorf("snapshot %+v", st.Snapshot)
	}
	if st.Ready || !strings.Contains(st.NotReady, "two intervals") {
		t.Errorf("a generation from %s reported ready=%v (%s)", ref, st.Ready, st.NotReady)
	}
	peers, _ := st.Peers.([]any)
	if len(peers) != 1 || peers[0].(map[string]any)["dial_failures"] != 3.0 || peers[0].(map[string]any)["last_error"] != "connection refused" {
		t.Errorf("peer states %#v", st.Peers)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ref, server.Options{})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "TRACE", "OPTIONS"} {
		if resp := f.do(t, m, "/metrics", nil); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /metrics: %d, want 405", m, resp.StatusCode)
		}
	}
	if resp := f.do(t, "HEAD", "/metrics", nil); resp.StatusCode != 200 {
		t.Errorf("HEAD /metrics: %d", resp.StatusCode)
	}
	f.do(t, "GET", "/snapshot/0", nil)
	f.do(t, "GET", "/snapshot/nope", nil)
	body := string(readAll(t, f.do(t, "GET", "/metrics", nil)))
	for _, want := range []string{
		`lnsync_http_requests_total{code="200",route="/snapshot/{ts}"} 1`,
		`lnsync_http_requests_total{code="400",route="/snapshot/{ts}"} 1`,
		`lnsync_http_request_duration_seconds_count{route="/snapshot/{ts}"} 2`,
		`lnsync_snapshot_served_reference_timestamp_seconds ` + strconv.FormatFloat(float64(ref.Unix()), 'g', -1, 64),
		"lnsync_snapshot_age_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestGracefulShutdown stops the server while a request is in flight: the
// request completes, new connections are refused, Stop returns.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	src := newIndex(t)
	enc := &encoder{src: src, gate: gate}
	f := newFixtureFrom(t, src, ref, server.Options{Listen: "127.0.0.1:0", Dynamic: enc})
	if err := f.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + f.srv.Addr()
	type result struct {
		code int
		n    int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/dynamic/" + strconv.FormatInt(ref.Unix()-9*3600, 10)) // computed
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{code: resp.StatusCode, n: len(b), err: err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for enc.inflight.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dynamic request never started computing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() {
		f.srv.Stop()
		close(stopped)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("Stop returned with a request in flight")
	default:
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("a new request was accepted during shutdown")
	}
	close(gate)
	res := <-done
	if res.err != nil || res.code != 200 || res.n == 0 {
		t.Errorf("in-flight request: %+v", res)
	}
	<-stopped
}

// A client cycling /dynamic through uncached grid points from four threads
// (as in the issue that found it: 1,033 computations in 25 s) holds at most
// one of the two computation slots, so a second client's requests keep their
// latency: p99 within twice the p99 with the server to itself. The first
// client gets 429 with Retry-After for what it asks beyond its share, and
// the per-minute limit refuses a burst of distinct grid points.
func TestDynamicFairness(t *testing.T) {
	t.Parallel()
	src := newIndex(t)
	enc := &encoder{src: src}
	f := newFixtureFrom(t, src, ref, server.Options{Dynamic: enc, DynamicConcurrency: 2, Clients: server.ClientLimits{PerMinute: -1}})
	// Grid points inside the widest scope that start no scope: each is a
	// computation the first time it is asked.
	var points []int64
	for h := int64(9); len(points) < 200; h += 3 {
		before := enc.calls.Load()
		f.doFrom(t, "198.51.100.1:1", "GET", fmt.Sprintf("/dynamic/%d", ref.Unix()-h*3600), nil)
		if enc.calls.Load() > before {
			points = append(points, ref.Unix()-h*3600)
		}
		if h > 24*32 {
			t.Fatalf("only %d computed grid points in the widest scope", len(points))
		}
	}
	// Those were computed and cached: use versions not yet asked for, each
	// costing 50 ms from now on.
	enc.cost.Store(int64(50 * time.Millisecond))
	victim := func(keys []int64) time.Duration {
		var lat []time.Duration
		for _, k := range keys {
			start := time.Now()
			resp := f.doFrom(t, "203.0.113.7:1", "GET", fmt.Sprintf("/dynamic/v2/%d", k), nil)
			lat = append(lat, time.Since(start))
			if resp.StatusCode != 200 {
				t.Fatalf("second client: %d", resp.StatusCode)
			}
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	idle := victim(points[:40])

	// The cycling client asks for points nobody asked for in version 2, so
	// that each request is a computation unless it is refused.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var attacks, refused atomic.Int32
	var next atomic.Int32
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1)) - 1
				if i >= len(points)-80 {
					i = (len(points) - 80) - 1 // out of new points: keep asking for the last
				}
				resp := f.doFrom(t, "192.0.2.66:4000", "GET", fmt.Sprintf("/dynamic/v2/%d", points[80+i]), nil)
				attacks.Add(1)
				if resp.StatusCode == http.StatusTooManyRequests {
					refused.Add(1)
					next.Add(-1) // try the same point again
					if resp.Header.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	attacked := victim(points[40:80])
	close(stop)
	wg.Wait()
	t.Logf("second client p99: %v alone, %v beside a cycling client (%d requests, %d refused)", idle, attacked, attacks.Load(), refused.Load())
	if attacked > 2*idle {
		t.Errorf("second client p99 %v beside a cycling client, more than twice %v alone", attacked, idle)
	}
	if refused.Load() == 0 {
		t.Error("the cycling client was never refused")
	}

	// The default per-minute limit: a burst of distinct points from one
	// client is cut after 20 computations.
	g := newFixtureFrom(t, src, ref, server.Options{Dynamic: &encoder{src: src}})
	codes := map[int]int{}
	for _, k := range points[:40] {
		codes[g.doFrom(t, "192.0.2.99:1", "GET", fmt.Sprintf("/dynamic/%d", k), nil).StatusCode]++
	}
	if codes[200] != 20 || codes[429] != 20 {
		t.Errorf("40 distinct points in a burst: %v; want 20 answered and 20 refused", codes)
	}
	// Another client is not affected.
	if c := g.doFrom(t, "192.0.2.100:1", "GET", fmt.Sprintf("/dynamic/%d", points[45]), nil).StatusCode; c != 200 {
		t.Errorf("a second client after the burst: %d", c)
	}
}
