package download_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/jackc/pgx/v5"
	"github.com/lightningnetwork/lnd/brontide"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/download"
)

// testPeer is a Lightning peer of our own on 127.0.0.1: a BOLT 8 listener
// that hands each accepted connection, after init, to the test.
type testPeer struct {
	t     *testing.T
	key   *btcec.PrivateKey
	l     *brontide.Listener
	conns chan *peerConn
}

// peerConn is one connection to the downloader, seen from the test peer. A
// goroutine reads everything the downloader sends onto msgs until the
// connection closes, which closes msgs.
type peerConn struct {
	t    *testing.T
	conn *brontide.Conn
	msgs chan lnwire.Message
}

func startTestPeer(t *testing.T) *testPeer {
	t.Helper()
	key := newKey(t)
	l, err := brontide.NewListener(&keychain.PrivKeyECDH{PrivKey: key}, "127.0.0.1:0", func(*btcec.PublicKey) (bool, error) { return true, nil })
	if err != nil {
		t.Fatal(err)
	}
	p := &testPeer{t: t, key: key, l: l, conns: make(chan *peerConn, 8)}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			pc := &peerConn{t: t, conn: c.(*brontide.Conn), msgs: make(chan lnwire.Message, 1024)}
			go pc.readLoop()
			p.conns <- pc
		}
	}()
	return p
}

func (p *testPeer) config() config.Peer {
	return config.Peer{PubKey: pub33(p.key), Addr: p.l.Addr().String()}
}

// accept waits for the downloader to connect and exchanges init.
func (p *testPeer) accept(timeout time.Duration) *peerConn {
	p.t.Helper()
	select {
	case c := <-p.conns:
		p.t.Cleanup(func() { c.conn.Close() })
		init := c.expect(timeout, func(m lnwire.Message) bool { _, ok := m.(*lnwire.Init); return ok }).(*lnwire.Init)
		fv := lnwire.NewFeatureVector(init.Features, lnwire.Features)
		if !fv.HasFeature(lnwire.GossipQueriesOptional) || !fv.HasFeature(lnwire.DataLossProtectOptional) {
			p.t.Errorf("downloader's init lacks gossip_queries or data_loss_protect: %v", fv)
		}
		c.send(lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), lnwire.NewRawFeatureVector(lnwire.GossipQueriesOptional)))
		return c
	case <-time.After(timeout):
		p.t.Fatalf("downloader did not connect within %s", timeout)
		return nil
	}
}

func (c *peerConn) readLoop() {
	defer close(c.msgs)
	for {
		raw, err := c.conn.ReadNextMessage()
		if err != nil {
			return
		}
		m, err := lnwire.ReadMessage(bytes.NewReader(raw), 0)
		if err == nil {
			c.msgs <- m
		}
	}
}

// sendRaw sends one wire message as is; it reports whether the connection
// took it.
func (c *peerConn) sendRaw(wire []byte) bool {
	if err := c.conn.WriteMessage(wire); err != nil {
		return false
	}
	_, err := c.conn.Flush()
	return err == nil
}

func (c *peerConn) send(m lnwire.Message) {
	c.t.Helper()
	var buf bytes.Buffer
	if _, err := lnwire.WriteMessage(&buf, m, 0); err != nil {
		c.t.Fatal(err)
	}
	if !c.sendRaw(buf.Bytes()) {
		c.t.Fatalf("send %s failed", m.MsgType())
	}
}

// expect returns the first message from the downloader that match accepts.
func (c *peerConn) expect(timeout time.Duration, match func(lnwire.Message) bool) lnwire.Message {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatal("downloader closed the connection")
			}
			if match(m) {
				return m
			}
		case <-deadline:
			c.t.Fatalf("no expected message from the downloader within %s", timeout)
		}
	}
}

// closed waits until the downloader closes the connection.
func (c *peerConn) closed(timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-c.msgs:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestHostilePeer(t *testing.T) {
	const (
		floodSize    = 30000
		pendingMax   = 1000
		garbageLimit = 10
		memoryBound  = 64 << 20
	)
	good, hostile := startTestPeer(t), startTestPeer(t)
	env := startDownloader(t, download.Config{
		Peers:          []config.Peer{good.config(), hostile.config()},
		ChainHash:      regtest,
		GarbageLimit:   garbageLimit,
		PendingMax:     pendingMax,
		PendingTimeout: 500 * time.Millisecond,
		BackoffMin:     100 * time.Millisecond,
		BackoffMax:     time.Second,
	})
	g := good.accept(10 * time.Second)
	h := hostile.accept(10 * time.Second)
	for _, c := range []*peerConn{g, h} {
		c.expect(5*time.Second, func(m lnwire.Message) bool {
			f, ok := m.(*lnwire.GossipTimestampRange)
			return ok && f.ChainHash == regtest && f.FirstTimestamp > 0
		})
	}
	// The downloader answers our queries without relaying anything.
	h.send(&lnwire.QueryChannelRange{ChainHash: regtest, FirstBlockHeight: 0, NumBlocks: 1 << 30})
	if r := h.expect(5*time.Second, func(m lnwire.Message) bool { _, ok := m.(*lnwire.ReplyChannelRange); return ok }).(*lnwire.ReplyChannelRange); len(r.ShortChanIDs) != 0 || r.Complete != 1 {
		t.Errorf("reply_channel_range = %+v, want complete and empty", r)
	}

	s := signer{t: t, chain: regtest}
	heapBefore := heapInUse()

	// The flood: well-formed updates of channels nobody announced, each
	// different, with junk signatures that cannot be checked without the
	// channel. They may wait, but only pendingMax of them at once.
	floodDone := make(chan int)
	go func() {
		c := s.newChannel(1)
		tmpl := s.update(c, 0, time.Now(), 1, nil)
		sent := 0
		for i := range floodSize {
			m := bytes.Clone(tmpl)
			rand.Read(m[2 : 2+64])
			binary.BigEndian.PutUint64(m[2+64+32:], uint64(i+1)<<40)
			if !h.sendRaw(m) {
				break
			}
			sent++
		}
		floodDone <- sent
	}()

	// Meanwhile the good peer delivers a small, valid graph.
	c := s.newChannel(40000 << 40)
	now := time.Now()
	goodMsgs := [][]byte{s.announcement(c, false), s.update(c, 0, now, 10, nil), s.update(c, 1, now, 20, nil),
		s.node(c.n1, now, "good1"), s.node(c.n2, now, "good2")}
	for _, m := range goodMsgs {
		if !g.sendRaw(m) {
			t.Fatal("good peer could not send")
		}
	}
	g.send(lnwire.NewPing(16))
	if p := g.expect(5*time.Second, func(m lnwire.Message) bool { _, ok := m.(*lnwire.Pong); return ok }).(*lnwire.Pong); len(p.PongBytes) != 16 {
		t.Errorf("pong has %d bytes, want 16", len(p.PongBytes))
	}

	if sent := <-floodDone; sent != floodSize {
		t.Fatalf("flood: only %d of %d messages sent", sent, floodSize)
	}
	if p := env.d.Status(); !p[1].Connected {
		t.Fatalf("flood of unverifiable updates disconnected the peer: %+v", p[1])
	}
	heapAfterFlood := heapInUse()

	// Garbage: bad signatures, wrong chain, truncated, oversized, unknown
	// even types; more than garbageLimit in all.
	other := signer{t: t, chain: mainnet}
	badAnn := s.announcement(s.newChannel(40001<<40), false)
	badAnn[2+10] ^= 1
	oversized := append(s.node(newKey(t), now, "big"), make([]byte, download.MaxGossipSize)...)
	unknownEven := []byte{0x80, 0x02, 1, 2, 3}
	unknownOdd := []byte{0x80, 0x03, 1, 2, 3}
	unknownEvenLow := []byte{0x7f, 0xf0, 1, 2, 3}
	garbage := [][]byte{
		badAnn, s.update(c, 0, now.Add(time.Second), 11, c.n2), s.node(c.n1, now.Add(time.Second), "forged")[:120],
		other.update(c, 0, now, 12, nil), other.announcement(s.newChannel(40002<<40), false),
		s.update(c, 1, now, 21, nil)[:100], oversized, unknownOdd, unknownEven, unknownEvenLow,
	}
	for round := 0; round < 3; round++ {
		for _, m := range garbage {
			m = bytes.Clone(m)
			if round > 0 && len(m) > 2+64+10 && m[0] < 0x7f {
				m[len(m)-1] ^= byte(round) // distinct bytes each round
			}
			h.sendRaw(m)
		}
	}
	if !h.closed(10 * time.Second) {
		t.Fatal("downloader kept the garbage peer connected")
	}
	// It comes back after the backoff.
	h2 := hostile.accept(10 * time.Second)
	h2.expect(5*time.Second, func(m lnwire.Message) bool { _, ok := m.(*lnwire.GossipTimestampRange); return ok })

	// Everything that waited has run out of time.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v := env.d.Verdicts(); v.Get(download.KindChannelUpdate, download.ReasonUnknownChannel) >= floodSize {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := env.writer.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}

	v := env.d.Verdicts()
	t.Logf("verdicts: %v", v.Map())
	t.Logf("heap in use: %d MiB before the flood, %d MiB after it", heapBefore>>20, heapAfterFlood>>20)
	if heapAfterFlood > heapBefore+memoryBound {
		t.Errorf("heap grew by %d MiB during the flood, bound %d MiB", (heapAfterFlood-heapBefore)>>20, memoryBound>>20)
	}
	for _, want := range []struct {
		kind   download.Kind
		reason download.Reason
		min    int64
	}{
		{download.KindChannelUpdate, download.ReasonUnknownChannel, floodSize},
		{download.KindChannelAnnouncement, download.ReasonBadSignature, 1},
		{download.KindChannelUpdate, download.ReasonBadSignature, 1},
		{download.KindChannelUpdate, download.ReasonWrongChain, 1},
		{download.KindChannelAnnouncement, download.ReasonWrongChain, 1},
		{download.KindNodeAnnouncement, download.ReasonMalformed, 1},
		{download.KindChannelUpdate, download.ReasonMalformed, 1},
		{download.KindNodeAnnouncement, download.ReasonOversized, 1},
		{download.KindOther, download.ReasonUnknownType, 3},
		{download.KindChannelAnnouncement, download.ReasonOK, 1},
		{download.KindChannelUpdate, download.ReasonOK, 2},
		{download.KindNodeAnnouncement, download.ReasonOK, 2},
	} {
		if n := v.Get(want.kind, want.reason); n < want.min {
			t.Errorf("%s/%s = %d, want at least %d", want.kind, want.reason, n, want.min)
		}
	}
	if n := v.Get(download.KindChannelUpdate, download.ReasonOK) + v.Get(download.KindChannelAnnouncement, download.ReasonOK) +
		v.Get(download.KindNodeAnnouncement, download.ReasonOK); n != 5 {
		t.Errorf("%d messages accepted, want the good peer's 5", n)
	}

	// Nothing but the good peer's messages is stored.
	conn, err := pgx.Connect(context.Background(), env.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored [][]byte
	rows, _ := conn.Query(context.Background(), `SELECT signed FROM channel_announcements UNION ALL SELECT signed FROM channel_updates
		UNION ALL SELECT signed FROM node_announcements`)
	if stored, err = pgx.CollectRows(rows, pgx.RowTo[[]byte]); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(goodMsgs) {
		t.Errorf("%d messages stored, want %d", len(stored), len(goodMsgs))
	}
	for _, m := range stored {
		found := false
		for _, gm := range goodMsgs {
			found = found || bytes.Equal(m, gm)
		}
		if !found {
			t.Errorf("stored a message the good peer did not send: %x…", m[:min(len(m), 40)])
		}
	}

	st := env.d.Status()
	if !st[0].Connected || st[0].Flaps != 0 || st[0].Garbage != 0 || st[0].Accepted != 5 {
		t.Errorf("good peer status %+v, want connected, no flaps, 5 accepted", st[0])
	}
	if st[1].Flaps < 1 || st[1].Garbage <= garbageLimit || st[1].Accepted != 0 {
		t.Errorf("hostile peer status %+v, want a flap, more than %d garbage, nothing accepted", st[1], garbageLimit)
	}
	hc := hostile.config()
	hostileID, err := env.store.UpsertPeer(context.Background(), hc.PubKey, hc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := env.store.PeerSessions(context.Background(), hostileID, time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) < 2 || sessions[0].Reason != "garbage" {
		t.Errorf("hostile peer sessions %+v, want a first one ended for garbage", sessions)
	}
}
