package download

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/brontide"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/config"
)

// initFeatures are the features we announce in init, both optional:
// data_loss_protect (lnd drops peers without it) and gossip_queries (peers
// only answer gossip queries and timestamp filters from peers that set it).
var initFeatures = []lnwire.FeatureBit{lnwire.DataLossProtectOptional, lnwire.GossipQueriesOptional}

// maxSCIDsPerQuery keeps a query_short_channel_ids within one message
// (8 bytes per scid, plain encoding, 65535-byte messages).
const maxSCIDsPerQuery = 8000

// peerState is one configured peer: its health (as lnd's chanfitness keeps
// it for channels) and its message counters.
type peerState struct {
	cfg      config.Peer
	fullSync bool
	src      *Source
	label    string

	mu          sync.Mutex
	id          int32
	connected   bool
	since       time.Time     // start of the current session
	firstSeen   time.Time     // start of the first session ever
	uptime      time.Duration // closed sessions only
	flaps       int           // sessions that ended
	synced      bool          // a session got as far as its gossip request
	lastErr     string
	nextAttempt time.Time
	dials       int64 // dial attempts that never connected, in this run
}

func (p *peerState) addDialFailure() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dials++
}

func (p *peerState) isConnected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected
}

func (p *peerState) setConnected(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.connected, p.since = true, at
	if p.firstSeen.IsZero() {
		p.firstSeen = at
	}
}

func (p *peerState) setDisconnected(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.connected {
		p.uptime += at.Sub(p.since)
		p.flaps++
	}
	p.connected = false
}

func (p *peerState) setNextAttempt(t time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextAttempt = t
	if err != nil {
		p.lastErr = err.Error()
	}
}

// sessionResult is how a connection ended.
type sessionResult struct {
	connected    bool // the dial succeeded (a session was recorded)
	connectedFor time.Duration
	garbage      bool
	err          error
}

// session dials the peer, runs the connection until it ends and records the
// session.
func (d *Downloader) session(ctx context.Context, p *peerState, logger *slog.Logger) sessionResult {
	conn, err := d.dial(ctx, p)
	if err != nil {
		return sessionResult{err: err}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	start := d.cfg.Now()
	dbCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	sessionID, err := d.store.StartPeerSession(dbCtx, p.id, start)
	cancel()
	if err != nil {
		return sessionResult{err: fmt.Errorf("start session: %w", err)}
	}
	p.setConnected(start)
	logger.Info("peer connected")
	c := &peerConn{d: d, p: p, conn: conn, logger: logger, garbageAtStart: p.src.Garbage()}
	runErr := c.run(ctx)
	end := d.cfg.Now()
	p.setDisconnected(end)

	reason := "disconnected"
	switch {
	case ctx.Err() != nil:
		reason = "shutdown"
	case errors.Is(runErr, errGarbage):
		reason = "garbage"
	case runErr != nil:
		reason = runErr.Error()
	}
	// Record the end even while shutting down.
	dbCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	if err := d.store.EndPeerSession(dbCtx, sessionID, end, reason); err != nil {
		logger.Warn("end peer session", "err", err)
	}
	cancel()
	return sessionResult{connected: true, connectedFor: end.Sub(start), garbage: errors.Is(runErr, errGarbage), err: runErr}
}

func (d *Downloader) dial(ctx context.Context, p *peerState) (*brontide.Conn, error) {
	tcpAddr, err := net.ResolveTCPAddr("tcp", p.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", p.cfg.Addr, err)
	}
	remote, err := btcec.ParsePubKey(p.cfg.PubKey[:])
	if err != nil {
		return nil, fmt.Errorf("peer key: %w", err)
	}
	// A fresh identity per connection: we have no channels to be known by.
	priv, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	dialer := func(network, addr string, timeout time.Duration) (net.Conn, error) {
		nd := net.Dialer{Timeout: timeout}
		if d.cfg.LocalAddr != nil {
			nd.LocalAddr = &net.TCPAddr{IP: d.cfg.LocalAddr}
		}
		return nd.DialContext(ctx, network, addr)
	}
	type result struct {
		conn *brontide.Conn
		err  error
	}
	// brontide.Dial does not take a context; run it aside so shutdown does
	// not wait for a slow handshake.
	done := make(chan result, 1)
	go func() {
		conn, err := brontide.Dial(&keychain.PrivKeyECDH{PrivKey: priv},
			&lnwire.NetAddress{IdentityKey: remote, Address: tcpAddr}, d.cfg.DialTimeout, dialer)
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("dial %s: %w", p.cfg.Addr, r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// peerConn is one live connection. Only its own goroutine uses it.
type peerConn struct {
	d              *Downloader
	p              *peerState
	conn           *brontide.Conn
	logger         *slog.Logger
	garbageAtStart int64

	// Range query state.
	rangeFirst, rangeNum uint32
	rangeDone            bool
	rangeSCIDs           []lnwire.ShortChannelID
	toQuery              []lnwire.ShortChannelID
	queryOutstanding     bool
}

func (c *peerConn) send(msg lnwire.Message) error {
	var buf bytes.Buffer
	if _, err := lnwire.WriteMessage(&buf, msg, 0); err != nil {
		return fmt.Errorf("encode %s: %w", msg.MsgType(), err)
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	if err := c.conn.WriteMessage(buf.Bytes()); err != nil {
		return fmt.Errorf("send %s: %w", msg.MsgType(), err)
	}
	if _, err := c.conn.Flush(); err != nil {
		return fmt.Errorf("send %s: %w", msg.MsgType(), err)
	}
	return nil
}

func (c *peerConn) read() ([]byte, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(c.d.cfg.IdleTimeout)); err != nil {
		return nil, err
	}
	return c.conn.ReadNextMessage()
}

// run exchanges init, asks for gossip and handles messages until the
// connection ends.
func (c *peerConn) run(ctx context.Context) error {
	if err := c.send(lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), lnwire.NewRawFeatureVector(initFeatures...))); err != nil {
		return err
	}
	raw, err := c.read()
	if err != nil {
		return fmt.Errorf("read init: %w", err)
	}
	msg, err := lnwire.ReadMessage(bytes.NewReader(raw), 0)
	if err != nil {
		return fmt.Errorf("read init: %w", err)
	}
	hello, ok := msg.(*lnwire.Init)
	if !ok {
		return fmt.Errorf("first message is %s, not init", msg.MsgType())
	}
	theirs := lnwire.NewRawFeatureVector()
	theirs.Merge(hello.GlobalFeatures)
	theirs.Merge(hello.Features)
	if !theirs.IsSet(lnwire.GossipQueriesOptional) && !theirs.IsSet(lnwire.GossipQueriesRequired) {
		return errors.New("peer does not support gossip_queries")
	}
	if err := c.requestGossip(ctx); err != nil {
		return err
	}
	for {
		raw, err := c.read()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read: %w", err)
		}
		if err := c.handle(ctx, raw); err != nil {
			return err
		}
		if c.p.src.Garbage()-c.garbageAtStart > int64(c.d.cfg.GarbageLimit) {
			return errGarbage
		}
	}
}

// requestGossip sends our gossip_timestamp_filter and starts the range
// query that fills what the filter does not bring.
func (c *peerConn) requestGossip(ctx context.Context) error {
	now := c.d.cfg.Now()
	first := now.Add(-c.d.cfg.RecentWindow)
	c.p.mu.Lock()
	synced := c.p.synced
	c.p.synced = true
	c.p.mu.Unlock()
	switch {
	case !synced && c.p.fullSync:
		first = now.Add(-maxBehind)
	case synced:
		dbCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		newest, err := c.d.store.NewestGossipTimestamp(dbCtx)
		cancel()
		if err == nil && newest != 0 {
			first = time.Unix(int64(newest), 0).Add(-c.d.cfg.RecentWindow)
		}
		if floor := now.Add(-maxBehind); first.Before(floor) {
			first = floor
		}
	}
	if err := c.send(&lnwire.GossipTimestampRange{
		ChainHash:      c.d.cfg.ChainHash,
		FirstTimestamp: uint32(max(first.Unix(), 0)),
		TimestampRange: math.MaxUint32,
	}); err != nil {
		return err
	}
	c.rangeFirst, c.rangeNum = 0, math.MaxUint32
	return c.send(&lnwire.QueryChannelRange{
		ChainHash:        c.d.cfg.ChainHash,
		FirstBlockHeight: c.rangeFirst,
		NumBlocks:        c.rangeNum,
	})
}

// handle processes one message from the peer.
func (c *peerConn) handle(ctx context.Context, raw []byte) error {
	v := c.d.v
	if len(raw) < 2 {
		v.Count(c.p.src, KindOther, ReasonMalformed)
		return nil
	}
	typ := binary.BigEndian.Uint16(raw)
	if kindOf(typ) != KindOther {
		return v.Submit(ctx, Message{Wire: raw, At: c.d.cfg.Now(), From: c.p.src})
	}
	msg, err := lnwire.ReadMessage(bytes.NewReader(raw), 0)
	if err != nil {
		var unknown *lnwire.UnknownMessage
		switch {
		case errors.As(err, &unknown) && typ%2 == 1:
			// It's ok to be odd (BOLT 1).
			v.counters.add(KindOther, ReasonUnknownType)
		case errors.As(err, &unknown):
			v.Count(c.p.src, KindOther, ReasonUnknownType)
		default:
			v.Count(c.p.src, KindOther, ReasonMalformed)
		}
		return nil
	}
	switch m := msg.(type) {
	case *lnwire.Custom:
		if typ%2 == 1 {
			v.counters.add(KindOther, ReasonUnknownType)
		} else {
			v.Count(c.p.src, KindOther, ReasonUnknownType)
		}
	case *lnwire.Ping:
		if m.NumPongBytes < lnwire.MaxPongBytes {
			return c.send(lnwire.NewPong(make([]byte, m.NumPongBytes)))
		}
	case *lnwire.QueryChannelRange:
		// We relay nothing: one complete, empty reply.
		return c.send(&lnwire.ReplyChannelRange{
			ChainHash:        m.ChainHash,
			FirstBlockHeight: m.FirstBlockHeight,
			NumBlocks:        m.NumBlocks,
			Complete:         1,
			EncodingType:     lnwire.EncodingSortedPlain,
		})
	case *lnwire.QueryShortChanIDs:
		return c.send(&lnwire.ReplyShortChanIDsEnd{ChainHash: m.ChainHash, Complete: 1})
	case *lnwire.ReplyChannelRange:
		return c.rangeReply(m)
	case *lnwire.ReplyShortChanIDsEnd:
		c.queryOutstanding = false
		return c.queryNext()
	case *lnwire.Error:
		c.logger.Warn("peer sent error", "msg", m.Error())
		if m.ChanID == (lnwire.ChannelID{}) {
			return fmt.Errorf("peer error: %s", m.Error())
		}
	case *lnwire.Warning:
		c.logger.Warn("peer sent warning", "msg", m.Warning())
	}
	// gossip_timestamp_filter, init repeats and channel messages: ignored.
	return nil
}

// rangeReply collects the channels a peer has and, once its reply covers
// the whole range, queries those we lack.
func (c *peerConn) rangeReply(m *lnwire.ReplyChannelRange) error {
	if c.rangeDone {
		return nil
	}
	c.rangeSCIDs = append(c.rangeSCIDs, m.ShortChanIDs...)
	end := uint64(m.FirstBlockHeight) + uint64(m.NumBlocks)
	if end < uint64(c.rangeFirst)+uint64(c.rangeNum) && m.NumBlocks != 0 {
		return nil
	}
	c.rangeDone = true
	for _, s := range c.rangeSCIDs {
		if !c.d.v.KnowsChannel(s.ToUint64()) {
			c.toQuery = append(c.toQuery, s)
		}
	}
	c.logger.Debug("channel range received", "channels", len(c.rangeSCIDs), "to_query", len(c.toQuery))
	c.rangeSCIDs = nil
	return c.queryNext()
}

// queryNext sends the next query_short_channel_ids; one is outstanding at
// a time, as BOLT 7 asks.
func (c *peerConn) queryNext() error {
	if c.queryOutstanding || len(c.toQuery) == 0 {
		return nil
	}
	n := min(len(c.toQuery), maxSCIDsPerQuery)
	batch := c.toQuery[:n]
	c.toQuery = c.toQuery[n:]
	slices.SortFunc(batch, func(a, b lnwire.ShortChannelID) int { return cmp.Compare(a.ToUint64(), b.ToUint64()) })
	c.queryOutstanding = true
	return c.send(&lnwire.QueryShortChanIDs{
		ChainHash:    c.d.cfg.ChainHash,
		EncodingType: lnwire.EncodingSortedPlain,
		ShortChanIDs: batch,
	})
}
