// Package loadpeer is a Lightning peer that serves recorded gossip: it
// accepts BOLT 8 connections on loopback, exchanges init, answers pings, and
// streams the messages of GSP files to every connected client at a set rate or
// as fast as the connection takes them. It measures lnsync's ingestion end to
// end through the real network path (handshake, encryption, framing).
//
// It relays nothing it receives and never dials out.
package loadpeer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/brontide"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/gsp"
)

// Config configures a Peer.
type Config struct {
	// Listen is the loopback address to accept on, e.g. "127.0.0.1:0".
	Listen string
	// Key is the peer's static node key; nil generates one.
	Key *btcec.PrivateKey
	// Files are GSP files streamed, in order, to each client.
	Files []string
	// Rate is messages per second per client; 0 sends as fast as possible.
	Rate float64
	// WaitForFilter starts a client's stream only after it sent
	// gossip_timestamp_filter, as a real peer does.
	WaitForFilter bool
	// Logger receives connection events.
	Logger *slog.Logger
}

// Stats counts what a Peer did.
type Stats struct {
	Connections int64
	Sent        int64         // gossip messages written
	Bytes       int64         // gossip bytes written
	Streaming   time.Duration // summed time from first to last message per client
}

// Peer is a running load peer. Create it with Listen; Close stops it.
type Peer struct {
	cfg    Config
	key    *btcec.PrivateKey
	ln     *brontide.Listener
	logger *slog.Logger

	wg                            sync.WaitGroup
	conns, sent, bytes, streaming atomic.Int64
	done                          chan struct{}
	closeOnce                     sync.Once
}

// Listen binds cfg.Listen, which must be a loopback address.
func Listen(cfg Config) (*Peer, error) {
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %s: only loopback addresses are allowed", cfg.Listen)
	}
	key := cfg.Key
	if key == nil {
		if key, err = btcec.NewPrivateKey(); err != nil {
			return nil, err
		}
	}
	ln, err := brontide.NewListener(&keychain.PrivKeyECDH{PrivKey: key}, cfg.Listen, brontide.DisabledBanClosure)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Peer{cfg: cfg, key: key, ln: ln, logger: logger.With("component", "loadpeer"), done: make(chan struct{})}, nil
}

// Addr returns the listening address.
func (p *Peer) Addr() string { return p.ln.Addr().String() }

// PubKey returns the peer's compressed node key.
func (p *Peer) PubKey() [33]byte {
	var k [33]byte
	copy(k[:], p.key.PubKey().SerializeCompressed())
	return k
}

// Stats returns the counters so far.
func (p *Peer) Stats() Stats {
	return Stats{Connections: p.conns.Load(), Sent: p.sent.Load(), Bytes: p.bytes.Load(), Streaming: time.Duration(p.streaming.Load())}
}

// Serve accepts clients until ctx ends or Close, serving each in its own
// goroutine, and waits for them before returning.
func (p *Peer) Serve(ctx context.Context) error {
	go func() {
		select {
		case <-ctx.Done():
			p.Close()
		case <-p.done:
		}
	}()
	defer p.wg.Wait()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			p.logger.Warn("handshake failed", "err", err)
			continue
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.serveConn(ctx, c.(*brontide.Conn)); err != nil {
				p.logger.Info("client done", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// Close stops accepting and disconnects every client.
func (p *Peer) Close() {
	p.closeOnce.Do(func() {
		close(p.done)
		p.ln.Close()
	})
}

func (p *Peer) serveConn(ctx context.Context, c *brontide.Conn) error {
	defer c.Close()
	go func() {
		select {
		case <-p.done:
		case <-ctx.Done():
		}
		c.Close()
	}()
	// Our init first; theirs is read by the read loop.
	features := lnwire.NewRawFeatureVector(lnwire.DataLossProtectOptional, lnwire.GossipQueriesOptional)
	init := lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), features)
	var mu sync.Mutex // serialises writes from the read loop (pongs) and the stream
	write := func(m lnwire.Message) error {
		var buf bytes.Buffer
		if _, err := lnwire.WriteMessage(&buf, m, 0); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		_, err := c.Write(buf.Bytes())
		return err
	}
	if err := write(init); err != nil {
		return fmt.Errorf("send init: %w", err)
	}
	filter := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { readErr <- p.readLoop(c, write, filter) }()
	if p.cfg.WaitForFilter {
		select {
		case <-filter:
		case err := <-readErr:
			return err
		case <-p.done:
			return nil
		}
	}
	start := time.Now()
	var sent int64
	defer func() {
		if sent > 0 {
			p.streaming.Add(int64(time.Since(start)))
		}
	}()
	for _, name := range p.cfg.Files {
		err := gsp.ReadFile(name, func(rec gsp.Record) error {
			if p.cfg.Rate > 0 {
				due := start.Add(time.Duration(float64(sent) / p.cfg.Rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
			mu.Lock()
			_, err := c.Write(rec.Msg)
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("stream: %w", err)
			}
			sent++
			p.sent.Add(1)
			p.bytes.Add(int64(len(rec.Msg)))
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Keep the connection up (answering pings) until the client leaves.
	select {
	case err := <-readErr:
		return err
	case <-p.done:
		return nil
	}
}

// readLoop answers pings and notes the client's gossip_timestamp_filter;
// everything else is read and dropped.
func (p *Peer) readLoop(c *brontide.Conn, write func(lnwire.Message) error, filter chan struct{}) error {
	filtered := false
	for {
		raw, err := c.ReadNextMessage()
		if err != nil {
			return err
		}
		msg, err := lnwire.ReadMessage(bytes.NewReader(raw), 0)
		if err != nil {
			continue // unknown or malformed: a load peer ignores it
		}
		switch m := msg.(type) {
		case *lnwire.Ping:
			if err := write(lnwire.NewPong(make([]byte, m.NumPongBytes))); err != nil {
				return err
			}
		case *lnwire.GossipTimestampRange:
			if !filtered {
				filtered = true
				close(filter)
			}
		}
	}
}
