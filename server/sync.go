package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/snapshot"
)

// DeltaEncoder computes an encoded delta on request; *lookup.Index
// satisfies it.
type DeltaEncoder interface {
	Encode(ctx context.Context, last, ref time.Time, formatVersion int) ([]byte, lookup.DeltaStats, error)
}

// Cache lifetimes of sync answers. The answer for a timestamp changes with
// every generation, so none is immutable: a scope or full answer may be
// cached until the next generation is due (a stale one is still a correct
// step: the client lands on the older R and asks again), but the empty delta
// for ts >= R must expire quickly, or a cache would keep a polling client at
// R after newer data is out.
const (
	emptyMaxAge = 60 * time.Second
	minMaxAge   = 60 * time.Second
)

// grid is the spacing of client timestamps, in seconds.
const grid = int64(snapshot.Grid / time.Second)

// maxTimestampDigits bounds what is parsed: RGS timestamps are u32.
const maxTimestampDigits = 10

// Header values shared by every sync response (never mutated).
var (
	hdrOctet   = []string{"application/octet-stream"}
	hdrGzip    = []string{"gzip"}
	hdrVary    = []string{"Accept-Encoding"}
	hdrNoSniff = []string{"nosniff"}
)

// parseTimestamp parses the {ts} path segment: decimal Unix seconds with an
// optional ".bin" suffix, at most a u32.
func parseTimestamp(seg string) (int64, error) {
	seg = strings.TrimSuffix(seg, ".bin")
	if seg == "" {
		return 0, Errorf(http.StatusBadRequest, "missing timestamp")
	}
	if len(seg) > maxTimestampDigits {
		return 0, Errorf(http.StatusBadRequest, "timestamp out of range")
	}
	for i := 0; i < len(seg); i++ {
		if seg[i] < '0' || seg[i] > '9' {
			return 0, Errorf(http.StatusBadRequest, "timestamp must be a non-negative integer (Unix seconds)")
		}
	}
	v, err := strconv.ParseUint(seg, 10, 32)
	if err != nil {
		return 0, Errorf(http.StatusBadRequest, "timestamp out of range")
	}
	return int64(v), nil
}

// collapseSlashes routes "/snapshot//123" like "/snapshot/123": some client
// configurations end their base URL with a slash.
func collapseSlashes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if r.URL.RawPath != "" {
			p = r.URL.RawPath
		}
		if strings.Contains(p, "//") {
			if rctx := chi.RouteContext(r.Context()); rctx != nil {
				for strings.Contains(p, "//") {
					p = strings.ReplaceAll(p, "//", "/")
				}
				rctx.RoutePath = p
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routeSync adds the snapshot and dynamic routes.
func (s *Server) routeSync() {
	get := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		s.router.Get(pattern, s.handle(h))
		s.router.Head(pattern, s.handle(h))
	}
	if s.opts.Snapshots != nil {
		get("/snapshot/{ts}", s.snapshot(1))
		get("/snapshot/v2/{ts}", s.snapshot(2))
	}
	if s.opts.Snapshots != nil && s.opts.Dynamic != nil {
		get("/dynamic/{ts}", s.dynamic(1))
		get("/dynamic/v2/{ts}", s.dynamic(2))
	}
}

// generation returns the served generation or a 503.
func (s *Server) generation(w http.ResponseWriter) (*snapshot.Generation, error) {
	g := s.opts.Snapshots.Current()
	if g == nil {
		w.Header().Set("Retry-After", "60")
		return nil, Errorf(http.StatusServiceUnavailable, "no snapshot yet")
	}
	return g, nil
}

// maxAge is how long a non-empty answer from g may be cached: until the next
// generation is due, at least a minute.
func maxAge(g *snapshot.Generation, now time.Time) time.Duration {
	return max(g.Reference().Add(g.Interval()).Sub(now), minMaxAge)
}

// snapshot serves /snapshot[/v2]/{ts} from the published generation: 0 is
// the full snapshot, ts >= R the empty delta stamped R, anything else the
// narrowest scope reaching back to ts.
func (s *Server) snapshot(version int) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		ts, err := parseTimestamp(chi.URLParam(r, "ts"))
		if err != nil {
			return err
		}
		g, err := s.generation(w)
		if err != nil {
			return err
		}
		s.serveGenerationFile(w, r, g, version, ts)
		return nil
	}
}

func (s *Server) serveGenerationFile(w http.ResponseWriter, r *http.Request, g *snapshot.Generation, version int, ts int64) {
	f := g.Pick(version, ts)
	age := emptyMaxAge
	if f.Info.Kind != snapshot.KindEmpty {
		age = maxAge(g, time.Now())
	}
	serveBody(w, r, body{plain: f.Data, gzip: f.Gzip, etag: f.ETag, gzipETag: f.GzipETag}, g.Manifest.Created, age)
}

// body is one answer with its precompressed form.
type body struct {
	plain, gzip    []byte
	etag, gzipETag string
}

// serveBody writes b with validators, caching and encoding negotiation;
// conditional requests get 304 and HEAD no body. Ranges are not offered.
// Header keys are assigned in canonical form: this is the hot path.
func serveBody(w http.ResponseWriter, r *http.Request, b body, modified time.Time, age time.Duration) {
	h := w.Header()
	data, etag := b.plain, b.etag
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		data, etag = b.gzip, b.gzipETag
		h["Content-Encoding"] = hdrGzip
	}
	h["Vary"] = hdrVary
	h["Etag"] = []string{etag}
	h["Last-Modified"] = []string{httpTime(modified)}
	h["Cache-Control"] = []string{cacheControl(age)}
	if notModified(r, etag, modified) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = hdrOctet
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Content-Length"] = []string{strconv.Itoa(len(data))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// httpTime formats t for Last-Modified, remembering the last answer (every
// response of a generation carries the same time).
func httpTime(t time.Time) string {
	if c := lastModified.Load(); c != nil && c.t.Equal(t) {
		return c.s
	}
	c := &formatted{t: t, s: t.UTC().Format(http.TimeFormat)}
	lastModified.Store(c)
	return c.s
}

type formatted struct {
	t time.Time
	s string
}

var lastModified atomic.Pointer[formatted]

// cacheControl returns the Cache-Control value for a lifetime; the
// one-minute value (empty delta, minimum) is preformatted.
func cacheControl(age time.Duration) string {
	if age == time.Minute {
		return cacheMinute
	}
	return "public, max-age=" + strconv.Itoa(int(age/time.Second))
}

var cacheMinute = "public, max-age=60"

// notModified evaluates If-None-Match (weak comparison, "*") and, without it,
// If-Modified-Since (RFC 9110 §13.2.2).
func notModified(r *http.Request, etag string, modified time.Time) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == etag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !modified.Truncate(time.Second).After(t)
	}
	return false
}

// acceptsGzip reports whether Accept-Encoding values admit gzip with a
// non-zero quality.
func acceptsGzip(values []string) bool {
	ok := false
	for _, ae := range values {
		if ae == "gzip" || strings.HasPrefix(ae, "gzip, ") {
			return true // the common forms, without allocating
		}
		for part := range strings.SplitSeq(ae, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "x-gzip" && name != "*" {
				continue
			}
			q := 1.0
			if k, v, found := strings.Cut(strings.TrimSpace(params), "="); found && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
			if name == "*" {
				ok = ok || q > 0
				continue
			}
			return q > 0 // an explicit gzip entry decides
		}
	}
	return ok
}

// dynamic serves /dynamic[/v2]/{ts}: the exact delta from ts rounded down to
// the 3-hour grid to the served generation's R, computed on request and
// cached per grid point. Answers the generation already holds are served
// from it: 0, ts >= R, a grid point that starts a scope, and a ts older than
// every scope (the full snapshot, as for /snapshot), which also bounds the
// keys to the grid points of the widest scope.
func (s *Server) dynamic(version int) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		ts, err := parseTimestamp(chi.URLParam(r, "ts"))
		if err != nil {
			return err
		}
		g, err := s.generation(w)
		if err != nil {
			return err
		}
		ref := g.Manifest.Reference
		last := ts - ts%grid
		if f := g.Manifest.Pick(version, last); f.Kind != snapshot.KindScope || f.Last == last {
			s.serveGenerationFile(w, r, g, version, last)
			return nil
		}
		key := dynamicKey{ref: ref, last: last, version: version}
		client := s.limiter.clientOf(r)
		admit := func() (func(), error) {
			ok, retry := s.limiter.acquire(client, time.Now())
			if !ok {
				s.limited.Inc()
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(retry.Seconds())))))
				return nil, Errorf(http.StatusTooManyRequests,
					"too many dynamic deltas computed for %s at once or this minute; retry in %s (answers already computed are not limited)",
					client, retry.Round(time.Second))
			}
			return func() { s.limiter.release(client) }, nil
		}
		b, err := s.dyn.get(r.Context(), key, s.opts.Dynamic, admit)
		if err != nil {
			return err
		}
		serveBody(w, r, *b, g.Manifest.Created, maxAge(g, time.Now()))
		return nil
	}
}

type dynamicKey struct {
	ref, last int64
	version   int
}

type dynamicEntry struct {
	ready chan struct{} // closed when b or err is set
	b     *body
	err   error
	size  int // bytes of b, counted in dynamicCache.bytes (under its mutex)
}

// dynamicCache computes dynamic deltas with bounded concurrency, one
// computation per key at a time, and keeps the results for the current
// reference time (at most max entries and about maxBytes).
type dynamicCache struct {
	sem     chan struct{}
	wait    time.Duration // longest wait for a computation slot
	timeout time.Duration // longest computation
	max     int

	maxBytes int

	mu      sync.Mutex
	entries map[dynamicKey]*dynamicEntry
	order   []dynamicKey // insertion order, oldest first
	bytes   int          // held by computed entries

	computed, hits, busy func()

	quit chan struct{} // closed by close: computations stop
	wg   sync.WaitGroup
}

func newDynamicCache(concurrency, max, maxBytes int) *dynamicCache {
	return &dynamicCache{
		sem: make(chan struct{}, concurrency), wait: 10 * time.Second, timeout: 2 * time.Minute, max: max, maxBytes: maxBytes,
		entries:  make(map[dynamicKey]*dynamicEntry),
		computed: func() {}, hits: func() {}, busy: func() {},
		quit: make(chan struct{}),
	}
}

// close cancels computations in progress and waits for them to end. Call it
// after the HTTP server has shut down.
func (c *dynamicCache) close() {
	close(c.quit)
	c.wg.Wait()
}

var errBusy = Errorf(http.StatusServiceUnavailable, "busy; retry shortly")

// get returns the delta for key, computing it when it is not cached.
// admit, called before a computation starts, may refuse it (a client over
// its limits); the release it returns is called when the computation ends.
func (c *dynamicCache) get(ctx context.Context, key dynamicKey, enc DeltaEncoder, admit func() (func(), error)) (*body, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok {
		release, err := admit()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if e, ok = c.entries[key]; !ok {
			e = &dynamicEntry{ready: make(chan struct{})}
			c.insertLocked(key, e)
		}
		c.mu.Unlock()
		if ok {
			release() // another request started it meanwhile
		} else {
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.compute(context.WithoutCancel(ctx), key, e, enc, release)
			}()
		}
	}
	if ok {
		c.hits()
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return e.b, e.err
}

// insertLocked adds e, dropping entries of older reference times and the
// oldest entries beyond max.
func (c *dynamicCache) insertLocked(key dynamicKey, e *dynamicEntry) {
	kept := c.order[:0]
	for _, k := range c.order {
		if k.ref == key.ref {
			kept = append(kept, k)
		} else {
			c.removeLocked(k)
		}
	}
	c.order = kept
	for len(c.order) >= c.max {
		c.removeLocked(c.order[0])
		c.order = c.order[1:]
	}
	c.entries[key] = e
	c.order = append(c.order, key)
}

// removeLocked forgets k's entry (the caller fixes c.order). Requests
// already holding the entry still get its result.
func (c *dynamicCache) removeLocked(k dynamicKey) {
	if e := c.entries[k]; e != nil {
		c.bytes -= e.size
		delete(c.entries, k)
	}
}

// storeLocked records the size of e's result and evicts the oldest other
// entries while the cache holds more than maxBytes.
func (c *dynamicCache) storeLocked(key dynamicKey, e *dynamicEntry, size int) {
	if c.entries[key] != e {
		return // evicted while computing: not counted
	}
	e.size = size
	c.bytes += size
	for i := 0; c.bytes > c.maxBytes && i < len(c.order); {
		if k := c.order[i]; k != key {
			c.removeLocked(k)
			c.order = append(c.order[:i], c.order[i+1:]...)
			continue
		}
		i++
	}
}

// compute runs detached from the first request, so that requests waiting for
// the same key are not failed by its cancellation; a failure is not cached.
// release is called before the waiting requests are answered, so that a
// client's next request finds its admission free.
func (c *dynamicCache) compute(ctx context.Context, key dynamicKey, e *dynamicEntry, enc DeltaEncoder, release func()) {
	defer close(e.ready)
	defer release()
	fail := func(err error) {
		e.err = err
		c.mu.Lock()
		if c.entries[key] == e {
			c.removeLocked(key)
			for i, k := range c.order {
				if k == key {
					c.order = append(c.order[:i], c.order[i+1:]...)
					break
				}
			}
		}
		c.mu.Unlock()
	}
	t := time.NewTimer(c.wait)
	defer t.Stop()
	select {
	case c.sem <- struct{}{}:
	case <-t.C:
		c.busy()
		fail(errBusy)
		return
	case <-c.quit:
		fail(Errorf(http.StatusServiceUnavailable, "shutting down"))
		return
	}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	go func() { // ends with the computation: cancel runs on return
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	data, _, err := enc.Encode(ctx, time.Unix(key.last, 0), time.Unix(key.ref, 0), key.version)
	if err != nil {
		fail(fmt.Errorf("dynamic delta from %d to %d v%d: %w", key.last, key.ref, key.version, err))
		return
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err = zw.Write(data)
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		fail(fmt.Errorf("compress dynamic delta: %w", err))
		return
	}
	e.b = &body{plain: data, gzip: gz.Bytes(), etag: etagOf(data), gzipETag: etagOf(gz.Bytes())}
	c.mu.Lock()
	c.storeLocked(key, e, len(data)+gz.Len())
	c.mu.Unlock()
	c.computed()
}

// etagOf matches the snapshot package's entity tags: the first 128 bits of
// the SHA-256, quoted.
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}
