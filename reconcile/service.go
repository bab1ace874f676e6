package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lnsync/lnsync/server"
)

// Config bounds the work of requests and schedules the Aggregator. Zero
// fields take the documented defaults.
type Config struct {
	// MaxRawWindow is the longest window computed from raw receipts; longer
	// metric windows use the hourly aggregates. Default 6h.
	MaxRawWindow time.Duration
	// MaxWindow is the longest metrics window. Default 31 days.
	MaxWindow time.Duration
	// MaxEstimateWindow is the longest sketch-estimate window (estimates need
	// raw receipts, so also within retention.receipts). Default 24h.
	MaxEstimateWindow time.Duration
	// MaxReceipts is the most receipts one request loads into memory (16 B
	// each while loading). Default 30,000,000.
	MaxReceipts int
	// MaxRounds is the most (peer, round) pairs one estimate request
	// computes, summed over a sweep. Default 5,000,000.
	MaxRounds int
	// MaxVerifyRounds is the most rounds one request builds real sketches
	// for (about 20 ms each at capacity 400, b = 32). Default 2,000.
	MaxVerifyRounds int
	// AggregateEvery is how often the Aggregator looks for closed hours.
	// Default 5m.
	AggregateEvery time.Duration
	// Backfill is how far back the Aggregator starts on an empty table; set
	// it to retention.receipts. Default 14 days.
	Backfill time.Duration
	// Settle is how long after an hour's last receipts (two hours after its
	// start) the Aggregator waits for late batches. Default 5m.
	Settle time.Duration
	// HourTimeout bounds the aggregation of one hour. Default 5m.
	HourTimeout time.Duration
	// KeepAggregates is how long hourly aggregates are kept (about 90 MB a
	// day at mainnet rates). Zero keeps them forever.
	KeepAggregates time.Duration
	// MemoryBudget is the memory that research requests loading receipts may
	// hold together, charged BytesPerReceipt per receipt: a request waits
	// for room (up to AdmissionWait, then 503 with Retry-After), and one
	// that needs more than all of it is refused. Default 512 MiB.
	MemoryBudget int64
	// MaxInFlight is how many such requests run at once. Default 4.
	MaxInFlight int
	// AdmissionWait is how long a request waits for room in the budget.
	// Default 2s.
	AdmissionWait time.Duration
}

// DefaultConfig returns the configuration New uses: every field at its
// documented default.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MaxRawWindow, 6*time.Hour)
	def(&c.MaxWindow, 31*24*time.Hour)
	def(&c.MaxEstimateWindow, 24*time.Hour)
	def(&c.AggregateEvery, 5*time.Minute)
	def(&c.Backfill, 14*24*time.Hour)
	def(&c.Settle, 5*time.Minute)
	def(&c.HourTimeout, 5*time.Minute)
	if c.MaxReceipts <= 0 {
		c.MaxReceipts = 30_000_000
	}
	if c.MemoryBudget <= 0 {
		c.MemoryBudget = 512 << 20
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4
	}
	if c.AdmissionWait <= 0 {
		c.AdmissionWait = 2 * time.Second
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = 5_000_000
	}
	if c.MaxVerifyRounds <= 0 {
		c.MaxVerifyRounds = 2_000
	}
}

// badRequest refuses a request with a message safe to show its sender.
func badRequest(format string, args ...any) error {
	return server.Errorf(http.StatusBadRequest, format, args...)
}

// Service computes metrics and estimates on request and runs the hourly
// aggregation. Create it with New, add its routes, then Start and Stop it
// once. It is safe for concurrent use.
type Service struct {
	store  *Store
	cfg    Config
	logger *slog.Logger
	gauges *gauges
	budget *budget
	now    func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service reading pool. Its gauges are registered with reg
// (nil: not exported).
func New(cfg Config, pool *pgxpool.Pool, logger *slog.Logger, reg prometheus.Registerer) *Service {
	cfg.setDefaults()
	s := &Service{store: NewStore(pool), cfg: cfg, logger: logger.With("component", "reconcile"), now: time.Now,
		budget: newBudget(cfg.MemoryBudget, cfg.MaxInFlight, cfg.AdmissionWait)}
	s.gauges = newGauges()
	if reg != nil {
		s.gauges.register(reg)
	}
	return s
}

// Store returns the service's store.
func (s *Service) Store() *Store { return s.store }

// Start aggregates closed hours now and then every AggregateEvery until Stop
// or ctx ends.
func (s *Service) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ticker := time.NewTicker(s.cfg.AggregateEvery)
		defer ticker.Stop()
		for {
			n, err := s.AggregatePending(ctx, s.now())
			if err == nil && s.cfg.KeepAggregates > 0 {
				err = s.store.PruneAggregates(ctx, s.now().Add(-s.cfg.KeepAggregates))
			}
			switch {
			case err != nil && ctx.Err() == nil:
				s.logger.Warn("aggregation failed; retrying later", "err", err)
			case n > 0:
				s.logger.Info("aggregated receipts", "hours", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

// Stop ends the aggregation loop and waits for it.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// ClosedBefore returns the start of the first hour that is not closed at
// now: an hour H is closed once H+2h+Settle has passed.
func (s *Service) ClosedBefore(now time.Time) time.Time {
	return now.Add(-2*time.Hour - s.cfg.Settle).Truncate(time.Hour).UTC()
}

// AggregatePending aggregates, in order, every closed hour after the newest
// aggregated one (at most Backfill back) and returns how many it did.
func (s *Service) AggregatePending(ctx context.Context, now time.Time) (int, error) {
	last, err := s.store.LastAggregatedHour(ctx)
	if err != nil {
		return 0, err
	}
	start := now.Add(-s.cfg.Backfill).Truncate(time.Hour).UTC()
	if !last.IsZero() && last.Add(time.Hour).After(start) {
		start = last.Add(time.Hour)
	}
	end := s.ClosedBefore(now)
	n := 0
	for h := start; h.Before(end); h = h.Add(time.Hour) {
		if err := s.AggregateHour(ctx, h); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// AggregateHour (re)computes the aggregates of the hour starting at hour from
// raw receipts. Running it twice gives the same rows.
func (s *Service) AggregateHour(ctx context.Context, hour time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HourTimeout)
	defer cancel()
	w, err := s.store.LoadWindow(ctx, hour, hour.Add(time.Hour), 0)
	if err != nil {
		return fmt.Errorf("aggregate %s: %w", hour.Format(time.RFC3339), err)
	}
	sum := Summarize(w)
	if err := s.store.WriteHour(ctx, hour, sum); err != nil {
		return err
	}
	s.gauges.set(hour, BuildReport(sum, "aggregates", ReportOptions{}))
	return nil
}

// Source selects where metrics come from.
const (
	SourceAuto       = "auto"
	SourceRaw        = "raw"
	SourceAggregates = "aggregates"
)

// Metrics computes the report of [from, to). Raw windows are exact to the
// microsecond; aggregate windows are widened to whole hours, and hours not
// aggregated yet are summarised from raw receipts if they fit MaxRawWindow.
func (s *Service) Metrics(ctx context.Context, from, to time.Time, source string, opt ReportOptions) (*Report, error) {
	if err := s.checkWindow(from, to, s.cfg.MaxWindow); err != nil {
		return nil, err
	}
	if source == SourceAuto {
		source = SourceRaw
		if to.Sub(from) > s.cfg.MaxRawWindow {
			source = SourceAggregates
		}
	}
	switch source {
	case SourceRaw:
		if to.Sub(from) > s.cfg.MaxRawWindow {
			return nil, badRequest("source=raw allows windows up to %s", s.cfg.MaxRawWindow)
		}
		sum, err := s.summarize(ctx, from, to)
		if err != nil {
			return nil, err
		}
		return BuildReport(sum, SourceRaw, opt), nil
	case SourceAggregates:
		sum, err := s.hourSummary(ctx, from, to)
		if err != nil {
			return nil, err
		}
		return BuildReport(sum, SourceAggregates, opt), nil
	}
	return nil, badRequest("source must be auto, raw or aggregates")
}

func (s *Service) hourSummary(ctx context.Context, from, to time.Time) (*Summary, error) {
	from = from.Truncate(time.Hour).UTC()
	if t := to.Truncate(time.Hour); t.Before(to) {
		to = t.Add(time.Hour)
	}
	to = to.UTC()
	done, err := s.store.AggregatedHours(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var missing []time.Time
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		if !done[Micros(h)] {
			missing = append(missing, h)
		}
	}
	if time.Duration(len(missing))*time.Hour > s.cfg.MaxRawWindow {
		return nil, badRequest("%d hours of the window are not aggregated yet (at most %d are computed on request)",
			len(missing), int(s.cfg.MaxRawWindow/time.Hour))
	}
	agg, err := s.store.ReadHours(ctx, from, to)
	if err != nil {
		return nil, err
	}
	parts := []*Summary{agg}
	for _, h := range missing {
		sum, err := s.summarize(ctx, h, h.Add(time.Hour))
		if err != nil {
			return nil, err
		}
		parts = append(parts, sum)
	}
	return Merge(Micros(from), Micros(to), parts), nil
}

// summarize loads the receipts of [from, to) within the memory budget and
// summarises them.
func (s *Service) summarize(ctx context.Context, from, to time.Time) (*Summary, error) {
	release, err := s.admit(ctx, from, to)
	if err != nil {
		return nil, err
	}
	defer release()
	w, err := s.limited(s.store.LoadWindow(ctx, from, to, s.cfg.MaxReceipts))
	if err != nil {
		return nil, err
	}
	return Summarize(w), nil
}

// admit counts the receipts a load of [from, to) reads and reserves their
// memory in the budget (see Config.MemoryBudget).
func (s *Service) admit(ctx context.Context, from, to time.Time) (func(), error) {
	n, err := s.store.CountReceipts(ctx, from, to)
	if err != nil {
		return nil, err
	}
	if n > int64(s.cfg.MaxReceipts) {
		return nil, badRequest("the window holds more than %d receipts; ask for a shorter one", s.cfg.MaxReceipts)
	}
	return s.budget.acquire(ctx, n)
}

// limited turns the receipt limit into a message for the client.
func (s *Service) limited(w *Window, err error) (*Window, error) {
	if errors.Is(err, ErrTooLarge) {
		return nil, badRequest("the window holds more than %d receipts; ask for a shorter one", s.cfg.MaxReceipts)
	}
	return w, err
}

func (s *Service) checkWindow(from, to time.Time, limit time.Duration) error {
	if !from.Before(to) {
		return badRequest("from must be before to")
	}
	if to.Sub(from) > limit {
		return badRequest("window longer than %s", limit)
	}
	return nil
}

// EstimateRequest is a sketch-estimate request. A nil Peer aggregates over
// every peer; no Intervals sweeps SweepIntervals; no Bits uses Params.Bits.
// There is one estimate per interval and element size.
type EstimateRequest struct {
	From, To  time.Time
	Peer      *int32
	Intervals []time.Duration
	Bits      []int
	Params    EstimateParams
}

// EstimateResult is the answer to an EstimateRequest: one estimate per
// interval.
type EstimateResult struct {
	From      time.Time   `json:"from"`
	To        time.Time   `json:"to"`
	Peers     int         `json:"peers"`    // peers of the window
	Messages  int         `json:"messages"` // messages first sighted in the window
	Estimates []*Estimate `json:"estimates"`
}

// Estimate computes the reconciliation estimates of a request.
func (s *Service) Estimate(ctx context.Context, req EstimateRequest) (*EstimateResult, error) {
	if err := s.checkWindow(req.From, req.To, s.cfg.MaxEstimateWindow); err != nil {
		return nil, err
	}
	ivs := req.Intervals
	if len(ivs) == 0 {
		ivs = SweepIntervals
	}
	bits := req.Bits
	if len(bits) == 0 {
		bits = []int{req.Params.Bits}
	}
	var params []EstimateParams
	for _, b := range bits {
		for _, iv := range ivs {
			p := req.Params
			p.Interval, p.Bits = iv, b
			if err := p.Validate(); err != nil {
				return nil, badRequest("%s", err.Error())
			}
			params = append(params, p)
		}
	}
	if req.Params.KeepRounds && (req.Peer == nil || len(params) != 1) {
		return nil, badRequest("rounds=true needs one peer, one interval and one bits value")
	}
	release, err := s.admit(ctx, req.From, req.To)
	if err != nil {
		return nil, err
	}
	defer release()
	w, err := s.limited(s.store.LoadDeliveries(ctx, req.From, req.To, s.cfg.MaxReceipts))
	if err != nil {
		return nil, err
	}
	peers := len(w.Peers)
	if req.Peer != nil {
		peers = 1
	}
	var rounds int64
	for _, p := range params {
		rounds += int64(peers) * (int64(req.To.Sub(req.From)/p.Interval) + 2)
	}
	if rounds > int64(s.cfg.MaxRounds) {
		return nil, badRequest("%d peer rounds exceed the limit of %d; narrow the window, name a peer or an interval", rounds, s.cfg.MaxRounds)
	}
	if req.Params.Verify && rounds > int64(s.cfg.MaxVerifyRounds) {
		return nil, badRequest("verify=true allows at most %d peer rounds, this request has %d", s.cfg.MaxVerifyRounds, rounds)
	}
	res := &EstimateResult{From: req.From.UTC(), To: req.To.UTC(), Peers: len(w.Peers), Messages: len(w.Messages)}
	for _, p := range params {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var est *Estimate
		if req.Peer != nil {
			est, err = EstimatePeer(w, *req.Peer, p)
			if err != nil {
				return nil, badRequest("%s", err.Error())
			}
		} else {
			est, err = EstimateAll(w, p)
			if err != nil {
				return nil, err
			}
		}
		res.Estimates = append(res.Estimates, est)
	}
	return res, nil
}

// gauges export the headline figures of the newest aggregated hour.
type gauges struct {
	uniquePerMin *prometheus.GaugeVec
	redundancy   *prometheus.GaugeVec
	convergence  *prometheus.GaugeVec
	peers        prometheus.Gauge
	ppmMedian    prometheus.Gauge
	keepAlive    prometheus.Gauge
	hour         prometheus.Gauge

	mu     sync.Mutex
	newest time.Time
}

func newGauges() *gauges {
	return &gauges{
		uniquePerMin: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lnsync_reconcile_unique_messages_per_minute",
			Help: "Unique gossip messages per minute in the newest aggregated hour, by type."}, []string{"type"}),
		redundancy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lnsync_reconcile_redundancy",
			Help: "Receipts per unique message in the newest aggregated hour, by type."}, []string{"type"}),
		convergence: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lnsync_reconcile_convergence_delay_seconds",
			Help: "Mean over messages of the delay until a share q of the delivering peers had delivered, newest aggregated hour."}, []string{"q"}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lnsync_reconcile_peers",
			Help: "Peers that delivered a message first sighted in the newest aggregated hour."}),
		ppmMedian: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lnsync_reconcile_peers_per_message_median",
			Help: "Median number of peers delivering a message, newest aggregated hour."}),
		keepAlive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lnsync_reconcile_keepalive_share",
			Help: "Share of channel_updates equal to their previous version but for the timestamp, newest aggregated hour."}),
		hour: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lnsync_reconcile_aggregated_hour_timestamp_seconds",
			Help: "Start of the newest aggregated hour."}),
	}
}

func (g *gauges) register(reg prometheus.Registerer) {
	reg.MustRegister(g.uniquePerMin, g.redundancy, g.convergence, g.peers, g.ppmMedian, g.keepAlive, g.hour)
}

func (g *gauges) set(hour time.Time, r *Report) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if hour.Before(g.newest) {
		return // a refill of an older hour
	}
	g.newest = hour
	for _, t := range r.Types {
		g.uniquePerMin.WithLabelValues(t.Type).Set(t.UniquePerMin)
		g.redundancy.WithLabelValues(t.Type).Set(t.Redundancy)
	}
	for _, q := range r.Convergence.Quantiles {
		g.convergence.WithLabelValues(fmt.Sprintf("%g", q.Q)).Set(q.Mean)
	}
	g.peers.Set(float64(r.Peers))
	g.ppmMedian.Set(r.PeersPerMessage.Median)
	g.keepAlive.Set(r.Frequency.KeepAliveShare)
	g.hour.Set(float64(hour.Unix()))
}
