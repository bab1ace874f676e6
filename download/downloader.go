package download

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/persistence"
)

// Config configures a Downloader. Zero fields take the documented defaults.
type Config struct {
	// Peers are the Lightning nodes to collect gossip from.
	Peers []config.Peer
	// ChainHash is the network's chain_hash in wire byte order.
	ChainHash [32]byte
	// FullSyncPeers is how many peers (the first in Peers) are asked for the
	// full two-week dump on first connection; the rest only for the last
	// RecentWindow. Default 5.
	FullSyncPeers int
	// RecentWindow is how far back a peer outside the full-sync set, or a
	// peer reconnecting, is asked for gossip (from the newest stored
	// timestamp on reconnection). Default 1h.
	RecentWindow time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential wait before
	// reconnecting. Defaults 5s and 5m.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// GarbageLimit is how many garbage messages (bad signatures, wrong chain,
	// malformed …) one connection may deliver before it is closed and the
	// peer backed off for BackoffMax. Default 100.
	GarbageLimit int
	// PendingMax and PendingTimeout bound the waiting room of updates and node
	// announcements whose channel is not known yet. Defaults 10000 and 2m.
	PendingMax     int
	PendingTimeout time.Duration
	// CaughtUpInterval is the tick of the caught-up detection. Default 5s.
	CaughtUpInterval time.Duration
	// DialTimeout bounds TCP connect plus the BOLT 8 handshake. Default 20s.
	DialTimeout time.Duration
	// IdleTimeout closes a connection that delivered nothing, not even a
	// ping, for this long. Default 6m (lnd pings loopback and Tor peers
	// every 3 minutes).
	IdleTimeout time.Duration
	// Workers is how many goroutines check signatures. Default
	// runtime.NumCPU().
	Workers int
	// LocalAddr, when set, is the local IP to dial from.
	LocalAddr net.IP
	// FundingREST enables the funding output check (ValidatorConfig).
	FundingREST string
	// Now is the gossip clock: the receive time stamped on every message
	// (which the too_new and too_old rules compare with), the start of the
	// gossip_timestamp_filter and the session times. Default time.Now;
	// replaying a recorded history sets it to the history's time.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.FullSyncPeers == 0 {
		c.FullSyncPeers = 5
	}
	if c.GarbageLimit <= 0 {
		c.GarbageLimit = 100
	}
	def(&c.RecentWindow, time.Hour)
	def(&c.BackoffMin, 5*time.Second)
	def(&c.BackoffMax, 5*time.Minute)
	def(&c.CaughtUpInterval, 5*time.Second)
	def(&c.DialTimeout, 20*time.Second)
	def(&c.IdleTimeout, 6*time.Minute)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
}

// ConfigFrom maps the [download] section of the configuration file.
func ConfigFrom(cfg config.Config) Config {
	d := cfg.Download
	return Config{
		Peers:          cfg.Peers(),
		ChainHash:      cfg.ChainHash(),
		FullSyncPeers:  d.FullSyncPeers,
		RecentWindow:   d.RecentWindow.Std(),
		BackoffMin:     d.BackoffMin.Std(),
		BackoffMax:     d.BackoffMax.Std(),
		GarbageLimit:   d.GarbageLimit,
		PendingMax:     d.PendingMax,
		PendingTimeout: d.PendingTimeout.Std(),
		FundingREST:    d.BitcoindREST,
	}
}

// Downloader keeps a BOLT 8 connection to every configured peer, asks each
// for gossip, validates what arrives and stores it with per-peer receipts
// and sessions. It is an observer: it answers queries with empty replies
// and never forwards gossip.
//
// Create it with New, then Start and Stop it once. Its accessors are safe
// for concurrent use.
type Downloader struct {
	cfg    Config
	store  *persistence.Store
	logger *slog.Logger

	v     *Validator
	peers []*peerState

	caughtUp     atomic.Bool
	caughtUpCh   chan struct{}
	caughtUpOnce sync.Once

	cancel context.CancelFunc // ends what Start launched
	wg     sync.WaitGroup
}

// New returns a Downloader that stores through writer (a live writer: seen
// times are its commit clock). It does nothing until Start.
func New(cfg Config, store *persistence.Store, writer *persistence.Writer, logger *slog.Logger) *Downloader {
	cfg.setDefaults()
	d := &Downloader{
		cfg:        cfg,
		store:      store,
		logger:     logger.With("component", "download"),
		caughtUpCh: make(chan struct{}),
	}
	vcfg := ValidatorConfig{
		ChainHash:      cfg.ChainHash,
		Workers:        cfg.Workers,
		PendingMax:     cfg.PendingMax,
		PendingTimeout: cfg.PendingTimeout,
		FundingREST:    cfg.FundingREST,
		Now:            cfg.Now,
	}
	if store != nil {
		// Imported messages that wait for their channel are validated when
		// a peer announces it.
		vcfg.Waiting = store
	}
	d.v = NewValidator(vcfg, writer, logger)
	for i, p := range cfg.Peers {
		d.peers = append(d.peers, &peerState{
			cfg:      p,
			fullSync: i < cfg.FullSyncPeers,
			src:      &Source{},
			label:    hex.EncodeToString(p.PubKey[:]),
		})
	}
	return d
}

// Start loads the stored channels (so their updates validate at once),
// closes sessions left open by a previous run, and launches the validator,
// one goroutine per peer and the caught-up detector. It returns an error
// only when the database cannot be read.
func (d *Downloader) Start(ctx context.Context) error {
	loadCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	n, err := d.v.LoadChannels(loadCtx, d.store)
	if err != nil {
		return fmt.Errorf("start downloader: %w", err)
	}
	if _, err := d.store.CloseOpenSessions(loadCtx, d.cfg.Now(), "restart"); err != nil {
		return fmt.Errorf("start downloader: %w", err)
	}
	d.logger.Info("downloader starting", "peers", len(d.peers), "known_channels", n)
	ctx, d.cancel = context.WithCancel(ctx)
	d.v.Start(ctx)
	for _, p := range d.peers {
		d.wg.Go(func() { d.runPeer(ctx, p) })
	}
	d.wg.Go(func() { d.detectCaughtUp(ctx) })
	return nil
}

// Stop closes the peer connections (recording the end of their sessions)
// and waits for every goroutine Start launched. Messages already handed to
// the writer stay queued there; stop the writer after the Downloader.
func (d *Downloader) Stop() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	d.v.Stop()
}

// CaughtUp reports whether the initial sync has settled (see the package
// documentation). It never turns false again.
func (d *Downloader) CaughtUp() bool { return d.caughtUp.Load() }

// WaitCaughtUp blocks until CaughtUp or ctx ends.
func (d *Downloader) WaitCaughtUp(ctx context.Context) error {
	select {
	case <-d.caughtUpCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Verdicts returns the counts of verdicts on every message received.
func (d *Downloader) Verdicts() Verdicts { return d.v.Verdicts() }

func (d *Downloader) setCaughtUp() {
	d.caughtUpOnce.Do(func() {
		d.caughtUp.Store(true)
		close(d.caughtUpCh)
		d.logger.Info("caught up with the peers' gossip")
	})
}

// detectCaughtUp follows the reference server: every tick, compare the
// count of new announcements and updates with the previous tick; caught up
// when fewer than caughtUpQuiet arrived, channels and updates were already
// known at the previous tick and more than one update arrived in all.
func (d *Downloader) detectCaughtUp(ctx context.Context) {
	const caughtUpQuiet = 20
	tick := time.NewTicker(d.cfg.CaughtUpInterval)
	defer tick.Stop()
	var prevTotal, prevChannels, prevUpdates int64
	quietSince := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v := d.v.Verdicts()
		updates := v.Get(KindChannelUpdate, ReasonOK)
		channels := int64(d.v.Channels())
		total := v.Get(KindChannelAnnouncement, ReasonOK) + updates
		if total-prevTotal < caughtUpQuiet && prevChannels > 0 && prevUpdates > 0 && updates > 1 {
			d.setCaughtUp()
		}
		if total != prevTotal {
			quietSince = time.Now()
		} else if time.Since(quietSince) > 10*time.Minute {
			d.logger.Warn("no new gossip for 10 minutes", "connected_peers", d.connected())
			quietSince = time.Now()
		}
		prevTotal, prevChannels, prevUpdates = total, channels, updates
	}
}

func (d *Downloader) connected() int {
	n := 0
	for _, p := range d.peers {
		if p.isConnected() {
			n++
		}
	}
	return n
}

// runPeer connects to one peer until ctx ends, backing off between
// attempts.
func (d *Downloader) runPeer(ctx context.Context, p *peerState) {
	logger := d.logger.With("peer", p.cfg.String())
	backoff := d.cfg.BackoffMin
	// failures counts dials in a row that never connected: the first is
	// a warning, the rest are logged at debug level until one connects,
	// so an unreachable peer costs one line, not one per attempt.
	failures := 0
	for ctx.Err() == nil {
		if p.id == 0 {
			if err := d.registerPeer(ctx, p); err != nil {
				logger.Warn("register peer", "err", err)
			}
		}
		var res sessionResult
		if p.id != 0 {
			res = d.session(ctx, p, logger)
		}
		if ctx.Err() != nil {
			return
		}
		switch {
		case res.garbage:
			backoff = d.cfg.BackoffMax
		case res.connectedFor > d.cfg.BackoffMax:
			backoff = d.cfg.BackoffMin
		}
		// Full jitter over [backoff/2, backoff).
		wait := backoff/2 + rand.N(backoff/2+1)
		p.setNextAttempt(time.Now().Add(wait), res.err)
		after := wait.Round(time.Millisecond)
		if res.connected {
			failures = 0
			logger.Info("peer disconnected; reconnecting later", "after", after, "err", res.err)
		} else {
			failures++
			p.addDialFailure()
			if failures == 1 {
				logger.Warn("peer unreachable; retrying with backoff", "after", after, "err", res.err)
			} else {
				logger.Debug("peer still unreachable", "attempts", failures, "after", after, "err", res.err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, d.cfg.BackoffMax)
	}
}

// registerPeer records the peer and loads its session history.
func (d *Downloader) registerPeer(ctx context.Context, p *peerState) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := d.store.UpsertPeer(ctx, p.cfg.PubKey, p.cfg.Addr)
	if err != nil {
		return err
	}
	sessions, err := d.store.PeerSessions(ctx, id, time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.id = id
	p.src.PeerID = id
	for _, s := range sessions {
		if p.firstSeen.IsZero() || s.ConnectedAt.Before(p.firstSeen) {
			p.firstSeen = s.ConnectedAt
		}
		if s.DisconnectedAt != nil {
			p.uptime += s.DisconnectedAt.Sub(s.ConnectedAt)
			p.flaps++
		}
	}
	return nil
}

// errGarbage closes a connection whose peer sent too much garbage.
var errGarbage = errors.New("too many invalid messages")
