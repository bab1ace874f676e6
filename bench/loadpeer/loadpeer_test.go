package loadpeer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/brontide"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/bench/loadpeer"
	"github.com/lnsync/lnsync/gsp"
)

// writeGSP writes n distinct channel_update-shaped messages (not signed: the
// load peer does not look inside what it streams).
func writeGSP(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stream.gsp")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := gsp.NewWriter(f)
	for i := range n {
		msg := make([]byte, 138)
		binary.BigEndian.PutUint16(msg, 258)
		binary.BigEndian.PutUint32(msg[2+64+32+8:], uint32(i))
		if err := w.Write(msg, time.Unix(1_700_000_000+int64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func dial(t *testing.T, p *loadpeer.Peer) *brontide.Conn {
	t.Helper()
	key, _ := btcec.NewPrivateKey()
	remote := p.PubKey()
	pub, err := btcec.ParsePubKey(remote[:])
	if err != nil {
		t.Fatal(err)
	}
	addr, err := net.ResolveTCPAddr("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err := brontide.Dial(&keychain.PrivKeyECDH{PrivKey: key}, &lnwire.NetAddress{IdentityKey: pub, Address: addr}, 5*time.Second, net.DialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *brontide.Conn, m lnwire.Message) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := lnwire.WriteMessage(&buf, m, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func TestStreamsEveryMessageAfterTheFilterAndAnswersPings(t *testing.T) {
	const n = 300
	path := writeGSP(t, n)
	p, err := loadpeer.Listen(loadpeer.Config{Listen: "127.0.0.1:0", Files: []string{path}, Rate: 3000, WaitForFilter: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	c := dial(t, p)
	first, err := c.ReadNextMessage()
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(first) != uint16(lnwire.MsgInit) {
		t.Fatalf("first message type %d, want init", binary.BigEndian.Uint16(first))
	}
	send(t, c, lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), lnwire.NewRawFeatureVector(lnwire.GossipQueriesOptional)))
	// Nothing is streamed before the filter: a ping must come back first.
	send(t, c, lnwire.NewPing(7))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, err := c.ReadNextMessage()
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(raw) != uint16(lnwire.MsgPong) || len(raw) != 2+2+7 {
		t.Fatalf("got type %d (%d bytes), want a 7-byte pong", binary.BigEndian.Uint16(raw), len(raw))
	}
	start := time.Now()
	send(t, c, &lnwire.GossipTimestampRange{FirstTimestamp: 0, TimestampRange: 0xffffffff})
	for i := range n {
		raw, err := c.ReadNextMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if binary.BigEndian.Uint16(raw) != 258 || binary.BigEndian.Uint32(raw[2+64+32+8:]) != uint32(i) {
			t.Fatalf("message %d out of order or altered", i)
		}
	}
	// 300 messages at 3000/s take at least 0.1 s.
	if took := time.Since(start); took < 90*time.Millisecond {
		t.Errorf("stream took %v, faster than the configured rate", took)
	}
	// The peer counts a message once its write returned, which can be just
	// after the client read it.
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Sent < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := p.Stats(); st.Sent != n || st.Connections != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	if _, err := loadpeer.Listen(loadpeer.Config{Listen: "0.0.0.0:0"}); err == nil {
		t.Fatal("listening on every interface was allowed")
	}
}
