package downloadtest_test

import (
	"bytes"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/brontide"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/download/downloadtest"
)

// propagationBound is how long a channel_update may take to reach a node two
// hops away with --trickledelay=50; it takes about a second.
const propagationBound = 30 * time.Second

func TestNetworkComesUp(t *testing.T) {
	nw := downloadtest.StartNetwork(t, downloadtest.Options{})
	ctx := t.Context()
	if len(nw.Nodes) != 3 || len(nw.ChanPoints) != 2 {
		t.Fatalf("got %d nodes and %d channels, want 3 and 2", len(nw.Nodes), len(nw.ChanPoints))
	}
	a, b, c := nw.Nodes[0], nw.Nodes[1], nw.Nodes[2]

	t.Run("graph", func(t *testing.T) {
		g, err := a.DescribeGraph(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Channels) != 2 {
			t.Fatalf("A's graph has %d channels, want 2", len(g.Channels))
		}
		for i, cp := range nw.ChanPoints {
			ch := g.Channel(cp)
			if ch == nil {
				t.Fatalf("A's graph lacks channel %s", cp)
			}
			from, to := nw.Nodes[i], nw.Nodes[i+1]
			ends := []string{ch.Node1, ch.Node2}
			if !slices.Contains(ends, from.PubKey) || !slices.Contains(ends, to.PubKey) || ch.Node1 >= ch.Node2 {
				t.Errorf("channel %s has nodes %s, %s, want %s and %s in key order", cp, ch.Node1, ch.Node2, from.Alias, to.Alias)
			}
			if ch.ChannelID>>40 < 500 {
				t.Errorf("channel %s has short channel ID %d (block %d), want a block after 500", cp, ch.ChannelID, ch.ChannelID>>40)
			}
			if ch.Capacity != downloadtest.DefaultChannelSat {
				t.Errorf("channel %s has capacity %d, want %d", cp, ch.Capacity, downloadtest.DefaultChannelSat)
			}
			for _, p := range []*downloadtest.Policy{ch.Node1Policy, ch.Node2Policy} {
				if p == nil {
					t.Fatalf("channel %s lacks a policy", cp)
				}
				if p.Disabled || p.TimeLockDelta == 0 || p.MaxHTLCMsat == 0 || p.LastUpdate == 0 {
					t.Errorf("channel %s has policy %+v", cp, *p)
				}
			}
		}
		if len(g.Nodes) != 3 {
			t.Fatalf("A's graph has %d nodes, want 3", len(g.Nodes))
		}
		for _, n := range nw.Nodes {
			gn := g.Node(n.PubKey)
			if gn == nil {
				t.Fatalf("A's graph lacks node %s", n.Alias)
			}
			if gn.Alias != n.Alias || !slices.Equal(gn.Addresses, []string{n.Addr}) || len(gn.Features) == 0 {
				t.Errorf("node %s announced as %+v", n.Alias, *gn)
			}
		}
	})

	t.Run("policy update propagates", func(t *testing.T) {
		// B's side of B→C travels B → A over gossip.
		cp := nw.ChanPoints[1]
		const baseFee, feeRate, delta = 2345, 678, 100
		start := time.Now()
		if err := b.UpdateChanPolicy(ctx, cp, baseFee, feeRate, delta); err != nil {
			t.Fatal(err)
		}
		var got *downloadtest.Policy
		deadline := start.Add(propagationBound)
		for time.Now().Before(deadline) {
			g, err := a.DescribeGraph(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ch := g.Channel(cp); ch != nil {
				got = ch.Policy(b.PubKey)
				if got != nil && got.FeeBaseMsat == baseFee && got.FeeRateMilliMsat == feeRate && got.TimeLockDelta == delta {
					t.Logf("policy update reached A in %s", time.Since(start).Round(10*time.Millisecond))
					if cPol := ch.Policy(c.PubKey); cPol == nil || cPol.FeeBaseMsat == baseFee {
						t.Errorf("C's policy changed too: %+v", cPol)
					}
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("A still has policy %+v for B on %s after %s, want base fee %d, fee rate %d, delta %d",
			got, cp, propagationBound, baseFee, feeRate, delta)
	})

	t.Run("gossip client", func(t *testing.T) {
		g, err := a.DescribeGraph(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := fetchGraph(t, a, 30*time.Second)

		for _, ch := range g.Channels {
			if _, ok := got.channels[ch.ChannelID]; !ok {
				t.Errorf("no channel_announcement for %d", ch.ChannelID)
			}
			for dir, p := range []*downloadtest.Policy{ch.Node1Policy, ch.Node2Policy} {
				u, ok := got.updates[updateKey{ch.ChannelID, dir}]
				switch {
				case !ok:
					t.Errorf("no channel_update for %d direction %d", ch.ChannelID, dir)
				case int64(u.BaseFee) != p.FeeBaseMsat || int64(u.FeeRate) != p.FeeRateMilliMsat ||
					uint32(u.TimeLockDelta) != p.TimeLockDelta || u.Timestamp != p.LastUpdate:
					t.Errorf("channel_update %d/%d = %+v, describegraph has %+v", ch.ChannelID, dir, u, *p)
				}
			}
		}
		if len(got.channels) != 2 || len(got.updates) != 4 {
			t.Errorf("got %d channel_announcements and %d channel_updates, want 2 and 4", len(got.channels), len(got.updates))
		}
		for _, n := range nw.Nodes {
			ann, ok := got.nodes[n.PubKeyBytes]
			if !ok {
				t.Errorf("no node_announcement for %s", n.Alias)
				continue
			}
			if ann.Alias.String() != n.Alias || len(ann.Addresses) != 1 || ann.Addresses[0].String() != n.Addr {
				t.Errorf("node_announcement of %s has alias %q, addresses %v", n.Alias, ann.Alias, ann.Addresses)
			}
		}
	})
}

// gossipFeatures are the init features of a gossip-only client that lnd
// accepts: data_loss_protect (lnd disconnects peers without it) and
// gossip_queries (lnd only answers gossip_timestamp_filter from peers that
// set it), both as optional bits.
var gossipFeatures = []lnwire.FeatureBit{
	lnwire.DataLossProtectOptional, // bit 1
	lnwire.GossipQueriesOptional,   // bit 7
}

type updateKey struct {
	scid uint64
	dir  int // 0: sent by node_1, 1: by node_2
}

type gossip struct {
	channels map[uint64]*lnwire.ChannelAnnouncement1
	updates  map[updateKey]*lnwire.ChannelUpdate1
	nodes    map[[33]byte]*lnwire.NodeAnnouncement
}

// fetchGraph does what the downloader does against one peer: dial it over
// BOLT 8 from a fresh key, exchange init, ask for all gossip with
// gossip_timestamp_filter, and collect it until the peer's whole graph
// (2 channels, 4 updates, 3 nodes) has arrived. It answers pings and
// query_channel_range like a well-behaved peer.
func fetchGraph(t *testing.T, n *downloadtest.Node, timeout time.Duration) *gossip {
	t.Helper()
	priv, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	remote, err := btcec.ParsePubKey(n.PubKeyBytes[:])
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr, err := net.ResolveTCPAddr("tcp", n.Addr)
	if err != nil {
		t.Fatal(err)
	}
	// Dial from 127.0.0.2: lnd treats peers on 127.0.0.1 like Tor peers and
	// pings them only every few minutes.
	dial := func(network, addr string, timeout time.Duration) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		return d.Dial(network, addr)
	}
	conn, err := brontide.Dial(&keychain.PrivKeyECDH{PrivKey: priv},
		&lnwire.NetAddress{IdentityKey: remote, Address: tcpAddr}, 10*time.Second, dial)
	if err != nil {
		t.Fatalf("brontide dial %s: %v", n.Addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}

	send := func(msg lnwire.Message) {
		t.Helper()
		var buf bytes.Buffer
		if _, err := lnwire.WriteMessage(&buf, msg, 0); err != nil {
			t.Fatalf("encode %s: %v", msg.MsgType(), err)
		}
		if err := conn.WriteMessage(buf.Bytes()); err != nil {
			t.Fatalf("send %s: %v", msg.MsgType(), err)
		}
		if _, err := conn.Flush(); err != nil {
			t.Fatalf("send %s: %v", msg.MsgType(), err)
		}
	}
	recv := func() lnwire.Message {
		t.Helper()
		raw, err := conn.ReadNextMessage()
		if err != nil {
			t.Fatalf("read from %s: %v", n.Alias, err)
		}
		msg, err := lnwire.ReadMessage(bytes.NewReader(raw), 0)
		if err != nil {
			t.Fatalf("decode message from %s: %v", n.Alias, err)
		}
		return msg
	}

	send(lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), lnwire.NewRawFeatureVector(gossipFeatures...)))
	hello, ok := recv().(*lnwire.Init)
	if !ok {
		t.Fatal("first message from lnd is not init")
	}
	theirs := lnwire.NewFeatureVector(hello.Features, lnwire.Features)
	if !theirs.HasFeature(lnwire.GossipQueriesOptional) {
		t.Fatalf("lnd does not offer gossip_queries: %v", theirs)
	}
	send(&lnwire.GossipTimestampRange{
		ChainHash:      downloadtest.RegtestChainHash,
		FirstTimestamp: 0,
		TimestampRange: math.MaxUint32,
	})

	got := &gossip{
		channels: make(map[uint64]*lnwire.ChannelAnnouncement1),
		updates:  make(map[updateKey]*lnwire.ChannelUpdate1),
		nodes:    make(map[[33]byte]*lnwire.NodeAnnouncement),
	}
	start := time.Now()
	var pings int
	for len(got.channels) < 2 || len(got.updates) < 4 || len(got.nodes) < 3 {
		switch m := recv().(type) {
		case *lnwire.ChannelAnnouncement1:
			checkChain(t, m.ChainHash)
			got.channels[m.ShortChannelID.ToUint64()] = m
		case *lnwire.ChannelUpdate1:
			checkChain(t, m.ChainHash)
			dir := int(m.ChannelFlags & lnwire.ChanUpdateDirection)
			got.updates[updateKey{m.ShortChannelID.ToUint64(), dir}] = m
		case *lnwire.NodeAnnouncement:
			got.nodes[m.NodeID] = m
		case *lnwire.Ping:
			pings++
			send(lnwire.NewPong(make([]byte, m.NumPongBytes)))
		case *lnwire.QueryChannelRange:
			// We announce nothing; say so in one complete reply.
			send(&lnwire.ReplyChannelRange{
				ChainHash:        m.ChainHash,
				FirstBlockHeight: m.FirstBlockHeight,
				NumBlocks:        m.NumBlocks,
				Complete:         1,
				EncodingType:     lnwire.EncodingSortedPlain,
			})
		case *lnwire.GossipTimestampRange:
			checkChain(t, m.ChainHash)
		case *lnwire.Error:
			t.Fatalf("lnd sent error: %v", m)
		case *lnwire.Warning:
			t.Fatalf("lnd sent warning: %v", m)
		}
	}
	t.Logf("received %d channel_announcements, %d channel_updates, %d node_announcements in %s (%d pings answered); lnd's init feature bits: %v",
		len(got.channels), len(got.updates), len(got.nodes), time.Since(start).Round(time.Millisecond), pings, setBits(hello.Features))
	return got
}

func checkChain(t *testing.T, h [32]byte) {
	t.Helper()
	if h != downloadtest.RegtestChainHash {
		t.Fatalf("message for chain %x, want regtest %x", h, downloadtest.RegtestChainHash)
	}
}

// setBits lists the bits set in fv, in ascending order.
func setBits(fv *lnwire.RawFeatureVector) []lnwire.FeatureBit {
	var bits []lnwire.FeatureBit
	for bit := range lnwire.FeatureBit(fv.SerializeSize() * 8) {
		if fv.IsSet(bit) {
			bits = append(bits, bit)
		}
	}
	return bits
}
