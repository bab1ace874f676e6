package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lnsync/lnsync/snapshot"
)

// Readiness reports whether lnsync can serve fresh data; the reason explains
// a false answer.
type Readiness func(ctx context.Context) (ready bool, reason string)

// Options configures a Server.
type Options struct {
	// Listen is the TCP address to bind, e.g. "127.0.0.1:8080".
	Listen string
	// Registry receives the server's own metrics and is exposed on /metrics.
	Registry *prometheus.Registry
	// Ready backs /readyz; nil means always ready.
	Ready Readiness
	// Logger receives request errors.
	Logger *slog.Logger

	// Snapshots backs /snapshot/{ts} and /snapshot/v2/{ts}, and the snapshot
	// freshness part of /readyz; nil leaves them out.
	Snapshots *snapshot.Catalog
	// Dynamic computes /dynamic/{ts} and /dynamic/v2/{ts} (with Snapshots,
	// which gives the reference time); nil leaves them out.
	Dynamic DeltaEncoder
	// DynamicConcurrency bounds dynamic computations in progress. Zero means
	// 2.
	DynamicConcurrency int
	// Clients limits the dynamic computations one client may cause.
	Clients ClientLimits
	// PeerStates gives the per-peer part of /v1/status, marshalled as
	// JSON; nil leaves it null.
	PeerStates func() any
	// Peers is how many peers are configured; zero adds the hint to /readyz
	// that nothing is being collected.
	Peers int
	// CaughtUp reports whether the downloader has caught up with its peers;
	// nil means it has (a database filled by import).
	CaughtUp func() bool
	// Network is the chain name shown by /v1/status.
	Network string
	// PeersConnected reports connected gossip peers for /v1/status; nil
	// leaves the figure out.
	PeersConnected func() int
	// Counts reports stored message counts for /v1/status (cached for
	// CountsTTL); nil leaves them out.
	Counts func(ctx context.Context) (Counts, error)
	// SnapshotFailure describes why the last scheduled snapshot run failed,
	// or returns "" when it did not; /readyz names it when no fresh snapshot
	// is served. Nil: never.
	SnapshotFailure func() string
	// Unavailable reports whether a handler's error means a service it
	// needs (the database) is down: such requests are answered 503 with
	// Retry-After and the reason, and the outage is logged once when it
	// starts and once when it ends, not per request. Nil: never.
	Unavailable func(error) (reason string, ok bool)
}

// RetryAfterSeconds is the Retry-After of a 503 for a service outage.
const RetryAfterSeconds = 5

// DynamicCacheBytes bounds the memory of cached dynamic deltas.
const DynamicCacheBytes = 256 << 20

// CountsTTL is how long /v1/status reuses stored message counts.
const CountsTTL = 10 * time.Second

// Server is the HTTP API. Create it with New, then Start and Stop it once.
type Server struct {
	opts   Options
	router chi.Router
	http   *http.Server
	ln     net.Listener
	wg     sync.WaitGroup
	logger *slog.Logger

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	dyn     *dynamicCache
	limiter *clientLimiter
	limited prometheus.Counter
	counts  countsCache

	outageMu sync.Mutex
	outage   atomic.Int64 // requests answered 503 since the outage began; 0 when none
}

// New builds a Server with the health, readiness, status and metrics routes,
// and the sync routes that Options enables. Callers add their own routes
// with Mount before Start.
func New(opts Options) *Server {
	s := &Server{opts: opts, router: chi.NewRouter(), logger: opts.Logger.With("component", "http")}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lnsync_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lnsync_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
	}, []string{"route"})
	opts.Registry.MustRegister(s.requests, s.latency)
	concurrency := opts.DynamicConcurrency
	if concurrency <= 0 {
		concurrency = 2
	}
	s.dyn = newDynamicCache(concurrency, 512, DynamicCacheBytes)
	s.limiter = newClientLimiter(opts.Clients)
	s.limited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lnsync_http_dynamic_limited_total", Help: "Dynamic delta computations refused because the client was over its limits (429).",
	})
	opts.Registry.MustRegister(s.limited)
	s.registerSyncMetrics()

	s.router.Use(s.observe, cors, collapseSlashes)
	s.router.Get("/healthz", s.handle(s.healthz))
	s.router.Get("/readyz", s.handle(s.readyz))
	s.router.Get("/v1/status", s.handle(s.status))
	s.routeSync()
	metrics := promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})
	s.router.Get("/metrics", metrics.ServeHTTP)
	s.router.Head("/metrics", metrics.ServeHTTP)
	s.router.NotFound(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return Errorf(http.StatusNotFound, "no such resource")
	}))
	s.router.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return Errorf(http.StatusMethodNotAllowed, "method not allowed")
	}))
	return s
}

// Router returns the router so that other packages can add routes before
// Start.
func (s *Server) Router() chi.Router { return s.router }

// Handler returns the server's root handler (for tests).
func (s *Server) Handler() http.Handler { return s.router }

// Start binds the listener and serves in the background. It returns the bind
// error, if any.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "err", err)
		}
	}()
	s.logger.Info("listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address; valid after Start.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop stops accepting connections, waits up to 30 s for in-flight
// requests to finish, then stops dynamic computations still running.
func (s *Server) Stop() {
	if s.http == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.logger.Warn("shutdown did not finish in time", "err", err)
	}
	s.wg.Wait()
	s.dyn.close()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is ready when Ready says so, the downloader has caught up and, with
// snapshots configured, the served generation is newer than two intervals.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ready, reason := s.readiness(r.Context(), time.Now())
	if ready {
		return WriteJSON(w, http.StatusOK, map[string]any{"ready": true})
	}
	return WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reason})
}

func (s *Server) readiness(ctx context.Context, now time.Time) (bool, string) {
	if s.opts.Ready != nil {
		if ready, reason := s.opts.Ready(ctx); !ready {
			return false, reason
		}
	}
	if s.opts.CaughtUp != nil && !s.opts.CaughtUp() {
		return false, "downloader has not caught up"
	}
	if s.opts.Snapshots != nil {
		failure := ""
		if s.opts.SnapshotFailure != nil {
			if f := s.opts.SnapshotFailure(); f != "" {
				failure = "; " + f
			}
		}
		g := s.opts.Snapshots.Current()
		if g == nil {
			return false, "no snapshot published yet" + failure
		}
		if age := now.Sub(g.Reference()); age >= 2*g.Interval() {
			return false, fmt.Sprintf("newest snapshot is %s old (more than two intervals)%s", age.Round(time.Second), failure)
		}
		if full := g.Manifest.Pick(1, 0); full == nil || full.Announcements == 0 {
			reason := fmt.Sprintf("the served snapshot (%s) holds no channels; the next is due at %s",
				g.Reference().Format(time.RFC3339), g.Reference().Add(g.Interval()).Format(time.RFC3339))
			if s.opts.Peers == 0 {
				reason += "; no peers are configured (download.peers is empty): import gossip or configure peers"
			}
			return false, reason
		}
	}
	return true, ""
}

// Error is an HTTP error with a status and a message safe to show clients.
type Error struct {
	Status int
	Msg    string
	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error with a formatted message.
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// handle adapts a handler returning an error: an *Error becomes its status
// and message; an error Options.Unavailable recognises a 503 with its
// reason; anything else a 500 whose details go only to the log.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			s.noteOutage(nil)
			return
		}
		var he *Error
		switch reason, down := s.unavailable(err); {
		case errors.As(err, &he):
		case down:
			s.noteOutage(err)
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			he = &Error{Status: http.StatusServiceUnavailable, Msg: reason + "; retry later"}
		default:
			if r.Context().Err() == nil {
				s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			he = &Error{Status: http.StatusInternalServerError, Msg: "internal error"}
		}
		if he.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(he.RetryAfter))
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(he.Status)
		fmt.Fprintln(w, he.Msg)
	}
}

func (s *Server) unavailable(err error) (string, bool) {
	if s.opts.Unavailable == nil {
		return "", false
	}
	return s.opts.Unavailable(err)
}

// noteOutage logs the first request refused for an outage (err set) and,
// at the first success after it, how many were refused.
func (s *Server) noteOutage(err error) {
	if err == nil && s.outage.Load() == 0 {
		return // the common case, without the lock
	}
	s.outageMu.Lock()
	defer s.outageMu.Unlock()
	switch n := s.outage.Load(); {
	case err != nil && n == 0:
		s.outage.Store(1)
		s.logger.Warn("answering 503 while a service is unavailable", "err", err)
	case err != nil:
		s.outage.Add(1)
	case n > 0:
		s.logger.Info("service available again", "requests_refused", n)
		s.outage.Store(0)
	}
}

// Handle exposes the error adapter to packages adding routes.
func (s *Server) Handle(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return s.handle(h)
}

// WriteJSON writes v as indented JSON with status, uncached.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}

// statusRecorder captures the status code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		s.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// Shared CORS header values (never mutated).
var (
	hdrAllowOrigin   = []string{"*"}
	hdrExposeHeaders = []string{"Content-Length, Content-Encoding, ETag, Last-Modified"}
)

// cors lets browser and WASM wallets fetch with GET from any origin.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Canonical keys assigned directly: this runs on every request.
		h["Access-Control-Allow-Origin"] = hdrAllowOrigin
		h["Access-Control-Expose-Headers"] = hdrExposeHeaders
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "If-None-Match, If-Modified-Since, Accept-Encoding")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
