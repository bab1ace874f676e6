package gen

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// verifySig checks the k-th 64-byte signature of a wire message against
// the digest and a compressed public key, with btcec alone.
func verifySig(t *testing.T, wire []byte, k int, digest []byte, pub []byte) bool {
	t.Helper()
	var r, s btcec.ModNScalar
	if r.SetByteSlice(wire[2+64*k:2+64*k+32]) || s.SetByteSlice(wire[2+64*k+32:2+64*k+64]) {
		return false // overflow: not a valid signature
	}
	key, err := btcec.ParsePubKey(pub)
	if err != nil {
		t.Fatalf("bad public key %x: %v", pub, err)
	}
	return ecdsa.NewSignature(&r, &s).Verify(digest, key)
}

// TestSignaturesVerify checks every signature of the small history on a
// path independent of the generator: lnwire decodes each message, its
// DataToSign gives the signed bytes, and btcec verifies.
func TestSignaturesVerify(t *testing.T) {
	small := smallFixture(t)
	anns := map[uint64]*lnwire.ChannelAnnouncement1{}
	var nCA, nCU, nNA int
	regtest := Chains["regtest"]
	for i, d := range small.msgs {
		var data []byte
		var err error
		switch m := d.msg.(type) {
		case *lnwire.ChannelAnnouncement1:
			data, err = m.DataToSign()
		case *lnwire.ChannelUpdate1:
			data, err = m.DataToSign()
		case *lnwire.NodeAnnouncement:
			data, err = m.DataToSign()
		default:
			t.Fatalf("message %d: unexpected type %T", i, d.msg)
		}
		if err != nil {
			t.Fatal(err)
		}
		digest := chainhash.DoubleHashB(data)
		switch m := d.msg.(type) {
		case *lnwire.ChannelAnnouncement1:
			nCA++
			if m.ChainHash != regtest {
				t.Fatalf("channel %v: chain %v, want regtest", m.ShortChannelID, m.ChainHash)
			}
			for k, key := range [][33]byte{m.NodeID1, m.NodeID2, m.BitcoinKey1, m.BitcoinKey2} {
				if !verifySig(t, d.rec.Msg, k, digest, key[:]) {
					t.Fatalf("channel %v: signature %d does not verify", m.ShortChannelID, k)
				}
			}
			anns[m.ShortChannelID.ToUint64()] = m
		case *lnwire.ChannelUpdate1:
			nCU++
			if m.ChainHash != regtest {
				t.Fatalf("update of %v: chain %v, want regtest", m.ShortChannelID, m.ChainHash)
			}
			a := anns[m.ShortChannelID.ToUint64()]
			if a == nil {
				t.Fatalf("update of %v precedes its announcement", m.ShortChannelID)
			}
			key := a.NodeID1
			if m.ChannelFlags&lnwire.ChanUpdateDirection != 0 {
				key = a.NodeID2
			}
			if !verifySig(t, d.rec.Msg, 0, digest, key[:]) {
				t.Fatalf("update of %v dir %d does not verify", m.ShortChannelID, m.ChannelFlags&1)
			}
			// The signer of the other direction must not verify.
			other := a.NodeID2
			if key == a.NodeID2 {
				other = a.NodeID1
			}
			if verifySig(t, d.rec.Msg, 0, digest, other[:]) {
				t.Fatalf("update of %v verifies against the wrong node", m.ShortChannelID)
			}
		case *lnwire.NodeAnnouncement:
			nNA++
			if !verifySig(t, d.rec.Msg, 0, digest, m.NodeID[:]) {
				t.Fatalf("node announcement of %x does not verify", m.NodeID)
			}
		}
	}
	tot := small.man.Totals
	if nCA != tot.ChannelAnnouncements || nCU != tot.ChannelUpdates || nNA != tot.NodeAnnouncements {
		t.Errorf("verified %d/%d/%d messages, manifest says %d/%d/%d",
			nCA, nCU, nNA, tot.ChannelAnnouncements, tot.ChannelUpdates, tot.NodeAnnouncements)
	}
	if nCA != 3000 {
		t.Errorf("%d channel announcements, want one per channel (3000)", nCA)
	}
}

// TestTamperedSignatureFails makes sure the verification path can fail.
func TestTamperedSignatureFails(t *testing.T) {
	small := smallFixture(t)
	d := small.msgs[len(small.msgs)-1]
	wire := bytes.Clone(d.rec.Msg)
	wire[len(wire)-1] ^= 1
	m, err := lnwire.ReadMessage(bytes.NewReader(wire), 0)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	var pub []byte
	switch m := m.(type) {
	case *lnwire.ChannelUpdate1:
		data, _ = m.DataToSign()
		for _, x := range small.msgs {
			if a, ok := x.msg.(*lnwire.ChannelAnnouncement1); ok && a.ShortChannelID == m.ShortChannelID {
				pub = a.NodeID1[:]
				if m.ChannelFlags&1 == 1 {
					pub = a.NodeID2[:]
				}
			}
		}
	case *lnwire.NodeAnnouncement:
		data, _ = m.DataToSign()
		pub = m.NodeID[:]
	default:
		t.Fatalf("last message is a %T", m)
	}
	if verifySig(t, wire, 0, chainhash.DoubleHashB(data), pub) {
		t.Error("a message with a flipped bit still verifies")
	}
}
