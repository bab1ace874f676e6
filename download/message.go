package download

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/persistence"
)

// Wire types of the gossip messages the validator handles.
const (
	msgChannelAnnouncement uint16 = 256
	msgNodeAnnouncement    uint16 = 257
	msgChannelUpdate       uint16 = 258
)

// MaxGossipSize is the longest gossip message accepted, type included. Real
// announcements and updates are a few hundred bytes; the cap keeps a hostile
// peer from parking 64 KiB messages in the waiting room.
const MaxGossipSize = 16 << 10

// maxHTLCMsat is 21 million BTC in millisatoshi, the most any htlc_maximum_msat
// can be.
const maxHTLCMsat = 21_000_000 * 100_000_000 * 1000

// Offsets of the signed part: the signed digest is the double SHA-256 of the
// wire bytes after the type and the signature fields.
const (
	signedFromChannelAnnouncement = 2 + 4*64
	signedFromSingleSig           = 2 + 64
)

var errMalformed = errors.New("malformed")

// parsed is a decoded gossip message with the parts validation needs. Wire
// keeps the exact bytes as received; everything stored is cut from them.
type parsed struct {
	wire   []byte
	kind   Kind
	digest chainhash.Hash // what the signatures sign

	ann  *lnwire.ChannelAnnouncement1
	upd  *lnwire.ChannelUpdate1
	node *lnwire.NodeAnnouncement

	features  []byte // raw feature bits of an announcement
	addresses []byte // raw address descriptors of a node announcement
}

// parse decodes a gossip message of a known type. It fails with errMalformed
// when the bytes do not make a complete message of that type.
func parse(wire []byte) (*parsed, error) {
	if len(wire) < 2 {
		return nil, errMalformed
	}
	p := &parsed{wire: wire, kind: kindOf(binary.BigEndian.Uint16(wire))}
	body := bytes.NewReader(wire[2:])
	var err error
	switch p.kind {
	case KindChannelAnnouncement:
		p.ann = &lnwire.ChannelAnnouncement1{}
		if err = p.ann.Decode(body, 0); err == nil {
			p.features, err = sizedField(wire, signedFromChannelAnnouncement)
			p.digest = chainhash.DoubleHashH(wire[signedFromChannelAnnouncement:])
		}
	case KindChannelUpdate:
		p.upd = &lnwire.ChannelUpdate1{}
		if err = p.upd.Decode(body, 0); err == nil {
			if len(wire) < 2+64+32+8+4+1+1+2+8+4+4 {
				err = errMalformed
			}
			p.digest = chainhash.DoubleHashH(wire[signedFromSingleSig:])
		}
	case KindNodeAnnouncement:
		p.node = &lnwire.NodeAnnouncement{}
		if err = p.node.Decode(body, 0); err == nil {
			p.features, err = sizedField(wire, signedFromSingleSig)
			if err == nil {
				// features, timestamp, node_id, rgb, alias, then addresses
				p.addresses, err = sizedField(wire, signedFromSingleSig+2+len(p.features)+4+33+3+32)
			}
			p.digest = chainhash.DoubleHashH(wire[signedFromSingleSig:])
		}
	default:
		return nil, fmt.Errorf("type %d: %w", binary.BigEndian.Uint16(wire), errMalformed)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", p.kind, err, errMalformed)
	}
	return p, nil
}

// sizedField returns the u16-length-prefixed field at off.
func sizedField(wire []byte, off int) ([]byte, error) {
	if off+2 > len(wire) {
		return nil, errMalformed
	}
	n := int(binary.BigEndian.Uint16(wire[off:]))
	if off+2+n > len(wire) {
		return nil, errMalformed
	}
	return wire[off+2 : off+2+n], nil
}

// timestamp is the gossip timestamp, or 0 for a channel announcement.
func (p *parsed) timestamp() uint32 {
	switch p.kind {
	case KindChannelUpdate:
		return p.upd.Timestamp
	case KindNodeAnnouncement:
		return p.node.Timestamp
	}
	return 0
}

// verify checks sig over the message digest with key.
func (p *parsed) verify(sig lnwire.Sig, key *btcec.PublicKey) bool {
	s, err := sig.ToSignature()
	if err != nil {
		return false
	}
	return s.Verify(p.digest[:], key)
}

// verifyAnnouncement checks the four signatures of a channel announcement
// and returns the two node keys.
func (p *parsed) verifyAnnouncement() (k1, k2 *btcec.PublicKey, ok bool) {
	a := p.ann
	keys := [4]*btcec.PublicKey{}
	for i, raw := range [4][33]byte{a.NodeID1, a.NodeID2, a.BitcoinKey1, a.BitcoinKey2} {
		k, err := btcec.ParsePubKey(raw[:])
		if err != nil {
			return nil, nil, false
		}
		keys[i] = k
	}
	sigs := [4]lnwire.Sig{a.NodeSig1, a.NodeSig2, a.BitcoinSig1, a.BitcoinSig2}
	for i := range sigs {
		if !p.verify(sigs[i], keys[i]) {
			return nil, nil, false
		}
	}
	return keys[0], keys[1], true
}

func (p *parsed) announcementRecord() *persistence.ChannelAnnouncement {
	return &persistence.ChannelAnnouncement{
		SCID:     p.ann.ShortChannelID.ToUint64(),
		NodeID1:  p.ann.NodeID1,
		NodeID2:  p.ann.NodeID2,
		Features: bytes.Clone(p.features),
		Signed:   p.wire,
	}
}

func (p *parsed) updateRecord() *persistence.ChannelUpdate {
	u := p.upd
	r := &persistence.ChannelUpdate{
		SCID:                      u.ShortChannelID.ToUint64(),
		Direction:                 uint8(u.ChannelFlags & lnwire.ChanUpdateDirection),
		Timestamp:                 u.Timestamp,
		MessageFlags:              uint8(u.MessageFlags),
		ChannelFlags:              uint8(u.ChannelFlags),
		CLTVExpiryDelta:           u.TimeLockDelta,
		HTLCMinimumMsat:           uint64(u.HtlcMinimumMsat),
		FeeBaseMsat:               u.BaseFee,
		FeeProportionalMillionths: u.FeeRate,
		Signed:                    p.wire,
	}
	if u.MessageFlags.HasMaxHtlc() {
		r.HTLCMaximumMsat = uint64(u.HtlcMaximumMsat)
	}
	return r
}

func (p *parsed) nodeRecord() *persistence.NodeAnnouncement {
	n := p.node
	return &persistence.NodeAnnouncement{
		NodeID:    n.NodeID,
		Timestamp: n.Timestamp,
		Features:  bytes.Clone(p.features),
		Addresses: bytes.Clone(p.addresses),
		Alias:     n.Alias,
		RGB:       [3]byte{n.RGBColor.R, n.RGBColor.G, n.RGBColor.B},
		Signed:    p.wire,
	}
}

// Record decodes a gossip message into the record lnsync stores for it,
// received at at, without any check of Validator: no signatures, chain,
// channel or time rules, and no funding lookup. It serves bulk loads of
// histories whose origin is known, such as the benchmark's own signed
// network; gossip from peers and from files of unknown origin goes through
// Validator.
func Record(wire []byte, at time.Time) (persistence.Record, error) {
	p, err := parse(wire)
	if err != nil {
		return nil, err
	}
	switch p.kind {
	case KindChannelAnnouncement:
		r := p.announcementRecord()
		r.ReceivedAt = at
		return r, nil
	case KindChannelUpdate:
		r := p.updateRecord()
		r.ReceivedAt = at
		return r, nil
	default:
		r := p.nodeRecord()
		r.ReceivedAt = at
		return r, nil
	}
}
