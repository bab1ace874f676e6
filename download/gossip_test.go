package download_test

import (
	"bytes"
	"image/color"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// signer makes gossip messages signed with keys of its own, for edge cases
// no real capture has.
type signer struct {
	t     testing.TB
	chain [32]byte
}

func newKey(t testing.TB) *btcec.PrivateKey {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub33(k *btcec.PrivateKey) [33]byte {
	var b [33]byte
	copy(b[:], k.PubKey().SerializeCompressed())
	return b
}

// ordered returns two fresh keys, the one with the lesser node id first.
func ordered(t testing.TB) (*btcec.PrivateKey, *btcec.PrivateKey) {
	a, b := newKey(t), newKey(t)
	if bytes.Compare(a.PubKey().SerializeCompressed(), b.PubKey().SerializeCompressed()) > 0 {
		a, b = b, a
	}
	return a, b
}

func (s signer) encode(m lnwire.Message) []byte {
	s.t.Helper()
	var buf bytes.Buffer
	if _, err := lnwire.WriteMessage(&buf, m, 0); err != nil {
		s.t.Fatal(err)
	}
	return buf.Bytes()
}

func (s signer) sign(k *btcec.PrivateKey, wire []byte, from int) lnwire.Sig {
	s.t.Helper()
	digest := chainhash.DoubleHashB(wire[from:])
	sig, err := lnwire.NewSigFromSignature(ecdsa.Sign(k, digest))
	if err != nil {
		s.t.Fatal(err)
	}
	return sig
}

// channel holds the keys of a channel made by signer.
type channel struct {
	scid       uint64
	n1, n2     *btcec.PrivateKey
	btc1, btc2 *btcec.PrivateKey
}

func (s signer) newChannel(scid uint64) *channel {
	n1, n2 := ordered(s.t)
	return &channel{scid: scid, n1: n1, n2: n2, btc1: newKey(s.t), btc2: newKey(s.t)}
}

// announcement signs the channel's announcement; swap puts the node ids out
// of order (signatures stay valid).
func (s signer) announcement(c *channel, swap bool) []byte {
	n1, n2 := c.n1, c.n2
	if swap {
		n1, n2 = n2, n1
	}
	m := &lnwire.ChannelAnnouncement1{
		Features:       lnwire.NewRawFeatureVector(),
		ChainHash:      s.chain,
		ShortChannelID: lnwire.NewShortChanIDFromInt(c.scid),
		NodeID1:        pub33(n1), NodeID2: pub33(n2),
		BitcoinKey1: pub33(c.btc1), BitcoinKey2: pub33(c.btc2),
		ExtraOpaqueData: []byte{},
	}
	wire := s.encode(m)
	m.NodeSig1 = s.sign(n1, wire, 2+256)
	m.NodeSig2 = s.sign(n2, wire, 2+256)
	m.BitcoinSig1 = s.sign(c.btc1, wire, 2+256)
	m.BitcoinSig2 = s.sign(c.btc2, wire, 2+256)
	return s.encode(m)
}

// update signs a channel update of direction dir with fee base fee and the
// given timestamp; signedBy overrides the signing key when not nil.
func (s signer) update(c *channel, dir int, ts time.Time, fee uint32, signedBy *btcec.PrivateKey) []byte {
	return s.updateMax(c, dir, ts, fee, signedBy, 990_000_000)
}

// updateMax is update with the given htlc_maximum_msat.
func (s signer) updateMax(c *channel, dir int, ts time.Time, fee uint32, signedBy *btcec.PrivateKey, htlcMax uint64) []byte {
	m := &lnwire.ChannelUpdate1{
		ChainHash:       s.chain,
		ShortChannelID:  lnwire.NewShortChanIDFromInt(c.scid),
		Timestamp:       uint32(ts.Unix()),
		MessageFlags:    lnwire.ChanUpdateRequiredMaxHtlc,
		ChannelFlags:    lnwire.ChanUpdateChanFlags(dir),
		TimeLockDelta:   40,
		HtlcMinimumMsat: 1000,
		BaseFee:         fee,
		FeeRate:         100,
		HtlcMaximumMsat: lnwire.MilliSatoshi(htlcMax),
		ExtraOpaqueData: []byte{},
	}
	k := c.n1
	if dir == 1 {
		k = c.n2
	}
	if signedBy != nil {
		k = signedBy
	}
	wire := s.encode(m)
	m.Signature = s.sign(k, wire, 2+64)
	return s.encode(m)
}

// node signs a node announcement of k with alias and one IPv4 address.
func (s signer) node(k *btcec.PrivateKey, ts time.Time, alias string) []byte {
	var a lnwire.NodeAlias
	copy(a[:], alias)
	m := &lnwire.NodeAnnouncement{
		Features:        lnwire.NewRawFeatureVector(),
		Timestamp:       uint32(ts.Unix()),
		NodeID:          pub33(k),
		RGBColor:        color.RGBA{1, 2, 3, 0},
		Alias:           a,
		Addresses:       []net.Addr{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9735}},
		ExtraOpaqueData: []byte{},
	}
	wire := s.encode(m)
	m.Signature = s.sign(k, wire, 2+64)
	return s.encode(m)
}
