package server

import (
	"context"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Counts are stored message counts shown by /v1/status.
type Counts struct {
	ChannelAnnouncements int64 `json:"channel_announcements"`
	ChannelUpdates       int64 `json:"channel_updates"`
	NodeAnnouncements    int64 `json:"node_announcements"`
	Peers                int64 `json:"peers"`
}

// StatusSnapshot describes the served generation in /v1/status.
type StatusSnapshot struct {
	Reference       int64     `json:"reference"`
	ReferenceTime   time.Time `json:"reference_time"`
	AgeSeconds      int64     `json:"age_seconds"`
	IntervalSeconds int64     `json:"interval_seconds"`
	Created         time.Time `json:"created"`
	DurationSeconds float64   `json:"duration_seconds"`
	Files           int       `json:"files"`
	FullBytesV1     int64     `json:"full_bytes_v1"`
	FullBytesV2     int64     `json:"full_bytes_v2"`
}

// Status is the /v1/status document. Optional parts are null when their
// provider is not configured.
type Status struct {
	Network        string    `json:"network"`
	Now            time.Time `json:"now"`
	CaughtUp       bool      `json:"caught_up"`
	Ready          bool      `json:"ready"`
	NotReady       string    `json:"not_ready,omitempty"`
	PeersConnected *int      `json:"peers_connected"`
	// Peers is each configured peer's state (connected since, messages,
	// last error, dial failures), as the PeerStates provider gives it.
	Peers    any             `json:"peers"`
	Counts   *Counts         `json:"counts"`
	Snapshot *StatusSnapshot `json:"snapshot"`
}

// countsCache keeps the last counts for CountsTTL so that /v1/status does
// not count rows on every request.
type countsCache struct {
	mu  sync.Mutex
	at  time.Time
	val Counts
}

func (c *countsCache) get(ctx context.Context, now time.Time, fetch func(context.Context) (Counts, error)) (Counts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now.Sub(c.at) < CountsTTL {
		return c.val, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := fetch(ctx)
	if err != nil {
		return Counts{}, err
	}
	c.val, c.at = v, now
	return v, nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	now := time.Now()
	st := Status{Network: s.opts.Network, Now: now.UTC().Truncate(time.Second), CaughtUp: s.opts.CaughtUp == nil || s.opts.CaughtUp()}
	st.Ready, st.NotReady = s.readiness(r.Context(), now)
	if s.opts.PeersConnected != nil {
		n := s.opts.PeersConnected()
		st.PeersConnected = &n
	}
	if s.opts.PeerStates != nil {
		st.Peers = s.opts.PeerStates()
	}
	if s.opts.Counts != nil {
		c, err := s.counts.get(r.Context(), now, s.opts.Counts)
		if err != nil {
			return err
		}
		st.Counts = &c
	}
	if s.opts.Snapshots != nil {
		if g := s.opts.Snapshots.Current(); g != nil {
			m := g.Manifest
			st.Snapshot = &StatusSnapshot{
				Reference: m.Reference, ReferenceTime: g.Reference(), AgeSeconds: int64(now.Sub(g.Reference()) / time.Second),
				IntervalSeconds: m.Interval, Created: m.Created, DurationSeconds: m.DurationSeconds, Files: len(m.Files),
			}
			if f := g.Pick(1, 0); f != nil {
				st.Snapshot.FullBytesV1 = f.Info.Size
			}
			if f := g.Pick(2, 0); f != nil {
				st.Snapshot.FullBytesV2 = f.Info.Size
			}
		}
	}
	return WriteJSON(w, http.StatusOK, st)
}

// registerSyncMetrics adds the served snapshot's age and the dynamic delta
// counters to the registry.
func (s *Server) registerSyncMetrics() {
	reg := s.opts.Registry
	if s.opts.Snapshots != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lnsync_snapshot_age_seconds",
			Help: "Seconds since the reference time of the served snapshot generation; NaN before the first.",
		}, func() float64 {
			g := s.opts.Snapshots.Current()
			if g == nil {
				return math.NaN()
			}
			return time.Since(g.Reference()).Seconds()
		}))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lnsync_snapshot_served_reference_timestamp_seconds",
			Help: "Reference time R of the served snapshot generation; 0 before the first.",
		}, func() float64 {
			if g := s.opts.Snapshots.Current(); g != nil {
				return float64(g.Manifest.Reference)
			}
			return 0
		}))
	}
	dyn := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lnsync_dynamic_deltas_total", Help: "Dynamic delta requests by outcome (computed, cached, busy).",
	}, []string{"outcome"})
	reg.MustRegister(dyn)
	computed, cached, busy := dyn.WithLabelValues("computed"), dyn.WithLabelValues("cached"), dyn.WithLabelValues("busy")
	s.dyn.computed, s.dyn.hits, s.dyn.busy = computed.Inc, cached.Inc, busy.Inc
}
