package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ClientLimits bound what one client may make the server compute: dynamic
// deltas that are not cached yet. Cached answers are never limited.
type ClientLimits struct {
	// InFlight is how many computations one client may have running or
	// waiting at once. Zero means 1: with the default two computation
	// slots, one client can hold at most half of them.
	InFlight int
	// PerMinute is how many computations one client may start per minute
	// (a token bucket holding as many). Zero means 20; negative: no limit.
	PerMinute int
	// TrustedProxies are the addresses of reverse proxies in front of the
	// server: for a connection from one of them, the client is the right-most
	// address of X-Forwarded-For that is not itself a trusted proxy. Empty:
	// the connection's address is the client, and the header is ignored.
	TrustedProxies []netip.Prefix
}

// maxClients bounds the clients tracked at once; the least recently seen
// idle ones are forgotten first.
const maxClients = 10000

// clientLimiter applies ClientLimits per client address.
type clientLimiter struct {
	cfg ClientLimits

	mu      sync.Mutex
	clients map[netip.Addr]*clientState
}

type clientState struct {
	inFlight int
	tokens   float64
	updated  time.Time
}

func newClientLimiter(cfg ClientLimits) *clientLimiter {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 1
	}
	if cfg.PerMinute == 0 {
		cfg.PerMinute = 20
	}
	return &clientLimiter{cfg: cfg, clients: make(map[netip.Addr]*clientState)}
}

// clientOf returns the client address of r (see ClientLimits.TrustedProxies).
func (l *clientLimiter) clientOf(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	addr = addr.Unmap()
	if !l.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // a malformed chain: the proxy is the client
		}
		if a = a.Unmap(); !l.trusted(a) {
			return a
		}
	}
	return addr
}

func (l *clientLimiter) trusted(a netip.Addr) bool {
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// acquire admits one computation for client at now, or says how long to
// wait before trying again. A granted computation must be released.
func (l *clientLimiter) acquire(client netip.Addr, now time.Time) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[client]
	if c == nil {
		if len(l.clients) >= maxClients {
			l.forgetIdleLocked(now)
		}
		c = &clientState{tokens: float64(l.cfg.PerMinute), updated: now}
		l.clients[client] = c
	}
	if l.cfg.PerMinute > 0 {
		c.tokens = min(float64(l.cfg.PerMinute), c.tokens+now.Sub(c.updated).Minutes()*float64(l.cfg.PerMinute))
	}
	c.updated = now
	if c.inFlight >= l.cfg.InFlight {
		return false, time.Second
	}
	if l.cfg.PerMinute > 0 {
		if c.tokens < 1 {
			return false, time.Duration((1 - c.tokens) / float64(l.cfg.PerMinute) * float64(time.Minute))
		}
		c.tokens--
	}
	c.inFlight++
	return true, 0
}

func (l *clientLimiter) release(client netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[client]; c != nil && c.inFlight > 0 {
		c.inFlight--
	}
}

// forgetIdleLocked drops clients with nothing in flight whose bucket is
// full again (they are as if never seen), or, failing that, half of the idle
// ones, oldest first.
func (l *clientLimiter) forgetIdleLocked(now time.Time) {
	for a, c := range l.clients {
		if c.inFlight == 0 && (l.cfg.PerMinute <= 0 || now.Sub(c.updated) >= time.Minute) {
			delete(l.clients, a)
		}
	}
	if len(l.clients) < maxClients {
		return
	}
	var idle []netip.Addr
	for a, c := range l.clients {
		if c.inFlight == 0 {
			idle = append(idle, a)
		}
	}
	for _, a := range idle[:len(idle)/2] {
		delete(l.clients, a)
	}
}
