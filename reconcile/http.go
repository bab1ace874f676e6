package reconcile

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/lnsync/lnsync/server"
)

// Routes adds the research endpoints to r, relative to where r is mounted
// (lnsync mounts them at /v1/reconciliation):
//
//	GET /metrics?from=&to=&format=json|csv&source=auto|raw|aggregates&min_peers=&min_share=
//	GET /sketch-estimate?from=&to=&peer=&interval=&bits=32,64&q0=&alpha=&beta=&delta=&fpbits=
//	    &estimator=min|sum&capacity=margin|estimate&verify=&rounds=
//
// Times are RFC 3339 or Unix seconds; to defaults to now and from to one hour
// before to. Bad parameters and requests beyond the configured bounds are 400
// with a one-line message; other failures are 500 with details only in the
// log.
//
// handle is the server's error adapter (server.Server.Handle), which turns
// the *server.Error of a refused request into its status and message.
func (s *Service) Routes(handle func(func(http.ResponseWriter, *http.Request) error) http.HandlerFunc) func(chi.Router) {
	return func(r chi.Router) {
		r.Get("/metrics", handle(s.serveMetrics))
		r.Get("/sketch-estimate", handle(s.serveEstimate))
	}
}

func (s *Service) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "from", "to", "format", "source", "min_peers", "min_share"); err != nil {
		return err
	}
	from, to, err := s.window(q)
	if err != nil {
		return err
	}
	var opt ReportOptions
	if opt.MinPeers, err = intParam(q, "min_peers", 0, 0, 1_000_000); err != nil {
		return err
	}
	if opt.MinShare, err = floatParam(q, "min_share", 0.5, 0, 1); err != nil {
		return err
	}
	source := q.Get("source")
	if source == "" {
		source = SourceAuto
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return badRequest("format must be json or csv")
	}
	rep, err := s.Metrics(r.Context(), from, to, source, opt)
	if err != nil {
		return err
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		return rep.WriteCSV(w)
	}
	return server.WriteJSON(w, http.StatusOK, rep)
}

func (s *Service) serveEstimate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "from", "to", "peer", "interval", "bits", "q0", "alpha", "beta", "delta", "fpbits",
		"estimator", "capacity", "verify", "rounds"); err != nil {
		return err
	}
	var req EstimateRequest
	var err error
	if req.From, req.To, err = s.window(q); err != nil {
		return err
	}
	if v := q.Get("peer"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return badRequest("peer must be a peer id")
		}
		p := int32(n)
		req.Peer = &p
	}
	if v := q.Get("interval"); v != "" {
		d, err := durationParam(v)
		if err != nil || d < time.Second || d > 24*time.Hour {
			return badRequest("interval must be a duration between 1s and 24h (e.g. 60s)")
		}
		req.Intervals = []time.Duration{d}
	}
	p := DefaultEstimateParams()
	if v := q.Get("bits"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 2 || n > 64 || len(req.Bits) == 8 {
				return badRequest("bits must be up to 8 comma-separated integers in [2, 64] (e.g. 32,64)")
			}
			req.Bits = append(req.Bits, n)
		}
	}
	if p.Q0, err = floatParam(q, "q0", p.Q0, 0, 1); err != nil {
		return err
	}
	if p.Alpha, err = floatParam(q, "alpha", p.Alpha, 0, 10); err != nil {
		return err
	}
	if p.Beta, err = intParam(q, "beta", p.Beta, 0, 1000); err != nil {
		return err
	}
	if p.FPBits, err = intParam(q, "fpbits", p.FPBits, 0, 256); err != nil {
		return err
	}
	switch v := q.Get("delta"); v {
	case "":
	case "auto":
		p.DeltaAuto = true
	default:
		d, err := durationParam(v)
		if err != nil || d < 0 || d > Horizon {
			return badRequest("delta must be auto or a duration between 0 and 1h (e.g. 60s)")
		}
		p.Delta = d
	}
	if v := q.Get("estimator"); v != "" {
		p.Estimator = v
	}
	if v := q.Get("capacity"); v != "" {
		p.Capacity = v
	}
	if p.Verify, err = boolParam(q, "verify"); err != nil {
		return err
	}
	if p.KeepRounds, err = boolParam(q, "rounds"); err != nil {
		return err
	}
	req.Params = p
	res, err := s.Estimate(r.Context(), req)
	if err != nil {
		return err
	}
	return server.WriteJSON(w, http.StatusOK, res)
}

// window parses from and to.
func (s *Service) window(q url.Values) (from, to time.Time, err error) {
	to = s.now().UTC()
	if v := q.Get("to"); v != "" {
		if to, err = timeParam(v); err != nil {
			return from, to, badRequest("to: %s", err.Error())
		}
	}
	from = to.Add(-time.Hour)
	if v := q.Get("from"); v != "" {
		if from, err = timeParam(v); err != nil {
			return from, to, badRequest("from: %s", err.Error())
		}
	}
	return from, to, nil
}

func timeParam(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > 1<<40 {
			return time.Time{}, errors.New("unix time out of range")
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 or Unix seconds")
	}
	if t.Year() < 2009 || t.Year() > 9999 {
		return time.Time{}, errors.New("year out of range")
	}
	return t.UTC(), nil
}

// durationParam accepts Go durations ("90s", "2m") and plain seconds ("90").
func durationParam(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
			return 0, errors.New("out of range")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s must be an integer in [%d, %d]", name, lo, hi)
	}
	return n, nil
}

func floatParam(q url.Values, name string, def, lo, hi float64) (float64, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		return 0, badRequest("%s must be a number in [%g, %g]", name, lo, hi)
	}
	return f, nil
}

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s must be true or false", name)
	}
	return b, nil
}

// onlyParams rejects unknown and repeated parameters, so a typo is not
// silently ignored.
func onlyParams(q url.Values, known ...string) error {
	for k, v := range q {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			return badRequest("unknown parameter %q (known: %s)", k, strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return badRequest("parameter %q given more than once", k)
		}
	}
	return nil
}
