package download

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PeerStatus is the health of one configured peer, in the manner of lnd's
// chanfitness for channels: connection intervals summed into uptime over the
// time observed, and the number of flaps (sessions that ended). Uptime and
// flaps include the sessions of earlier runs, read from the database.
type PeerStatus struct {
	PubKey    string    `json:"pubkey"` // hex
	Addr      string    `json:"address"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"connected_since,omitzero"` // start of the current session
	// Uptime is the total time connected; Observed the time since the first
	// session began. Their ratio is the uptime ratio.
	Uptime      time.Duration `json:"uptime_ns"`
	Observed    time.Duration `json:"observed_ns"`
	Flaps       int           `json:"flaps"`
	Received    int64         `json:"messages_received"`
	Accepted    int64         `json:"messages_accepted"` // new and valid, first from this peer
	Garbage     int64         `json:"messages_garbage"`
	LastError   string        `json:"last_error,omitempty"`
	NextAttempt time.Time     `json:"next_attempt,omitzero"` // when disconnected
	// DialFailures counts the attempts of this run that never connected.
	DialFailures int64 `json:"dial_failures"`
}

// UptimeRatio is Uptime/Observed, or 0 before the first connection.
func (s PeerStatus) UptimeRatio() float64 {
	if s.Observed <= 0 {
		return 0
	}
	return min(1, float64(s.Uptime)/float64(s.Observed))
}

// Status returns every configured peer's status, in configuration order.
func (d *Downloader) Status() []PeerStatus {
	now := time.Now()
	out := make([]PeerStatus, 0, len(d.peers))
	for _, p := range d.peers {
		p.mu.Lock()
		s := PeerStatus{
			PubKey:    p.label,
			Addr:      p.cfg.Addr,
			Connected: p.connected,
			Uptime:    p.uptime,
			Flaps:     p.flaps,
			LastError: p.lastErr,

			DialFailures: p.dials,
		}
		if p.connected {
			s.Since = p.since
			s.Uptime += now.Sub(p.since)
		} else {
			s.NextAttempt = p.nextAttempt
		}
		if !p.firstSeen.IsZero() {
			s.Observed = now.Sub(p.firstSeen)
		}
		p.mu.Unlock()
		s.Received, s.Accepted, s.Garbage = p.src.Received(), p.src.Accepted(), p.src.Garbage()
		out = append(out, s)
	}
	return out
}

// Register adds the downloader's metrics to reg:
//
//	lnsync_download_messages_total{type,reason}   verdicts on received messages
//	lnsync_download_peers_connected                peers connected now
//	lnsync_download_peers                          peers configured
//	lnsync_download_pending_messages               messages waiting for their channel
//	lnsync_download_known_channels                 channels announced
//	lnsync_download_caught_up                      1 once the initial sync settled
//	lnsync_download_peer_connected{peer}           1 while connected
//	lnsync_download_peer_flaps_total{peer}         sessions ended (persisted)
//	lnsync_download_peer_uptime_ratio{peer}        uptime over observed time
//	lnsync_download_peer_dial_failures_total{peer} attempts that never connected
//	lnsync_download_peer_messages_total{peer,verdict}  received, accepted, garbage
func (d *Downloader) Register(reg prometheus.Registerer) error {
	return reg.Register(&collector{d: d})
}

var (
	descMessages      = prometheus.NewDesc("lnsync_download_messages_total", "Gossip messages received, by type and verdict (ok, duplicate or why dropped).", []string{"type", "reason"}, nil)
	descConnected     = prometheus.NewDesc("lnsync_download_peers_connected", "Peers connected now.", nil, nil)
	descPeers         = prometheus.NewDesc("lnsync_download_peers", "Peers configured.", nil, nil)
	descPending       = prometheus.NewDesc("lnsync_download_pending_messages", "Channel updates and node announcements waiting for their channel's announcement.", nil, nil)
	descChannels      = prometheus.NewDesc("lnsync_download_known_channels", "Channels whose announcement was validated.", nil, nil)
	descCaughtUp      = prometheus.NewDesc("lnsync_download_caught_up", "1 once the initial gossip sync has settled.", nil, nil)
	descPeerConnected = prometheus.NewDesc("lnsync_download_peer_connected", "1 while the peer is connected.", []string{"peer"}, nil)
	descPeerFlaps     = prometheus.NewDesc("lnsync_download_peer_flaps_total", "Connections to the peer that ended, over its recorded history.", []string{"peer"}, nil)
	descPeerUptime    = prometheus.NewDesc("lnsync_download_peer_uptime_ratio", "Time connected over time observed, over the peer's recorded history.", []string{"peer"}, nil)
	descPeerDials     = prometheus.NewDesc("lnsync_download_peer_dial_failures_total", "Attempts to reach the peer that never connected, since start.", []string{"peer"}, nil)
	descPeerMessages  = prometheus.NewDesc("lnsync_download_peer_messages_total", "Gossip messages from the peer: received, accepted (new and valid) and garbage.", []string{"peer", "verdict"}, nil)
)

// collector reads the downloader's counters at scrape time.
type collector struct{ d *Downloader }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descConnected, descPeers, descPending, descChannels, descCaughtUp,
		descPeerConnected, descPeerFlaps, descPeerUptime, descPeerDials, descPeerMessages} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	v := d.v.Verdicts()
	for k := range numKinds {
		for r := range numReasons {
			ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(v[k][r]), k.String(), r.String())
		}
	}
	gauge := func(desc *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, x, labels...)
	}
	counter := func(desc *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, x, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	status := d.Status()
	connected := 0
	for _, s := range status {
		if s.Connected {
			connected++
		}
		gauge(descPeerConnected, b2f(s.Connected), s.PubKey)
		counter(descPeerFlaps, float64(s.Flaps), s.PubKey)
		gauge(descPeerUptime, s.UptimeRatio(), s.PubKey)
		counter(descPeerDials, float64(s.DialFailures), s.PubKey)
		counter(descPeerMessages, float64(s.Received), s.PubKey, "received")
		counter(descPeerMessages, float64(s.Accepted), s.PubKey, "accepted")
		counter(descPeerMessages, float64(s.Garbage), s.PubKey, "garbage")
	}
	gauge(descConnected, float64(connected))
	gauge(descPeers, float64(len(status)))
	gauge(descPending, float64(d.v.Pending()))
	gauge(descChannels, float64(d.v.Channels()))
	gauge(descCaughtUp, b2f(d.CaughtUp()))
}

// ConnectedPeers returns how many peers are connected now.
func (d *Downloader) ConnectedPeers() int {
	n := 0
	for _, p := range d.Status() {
		if p.Connected {
			n++
		}
	}
	return n
}
