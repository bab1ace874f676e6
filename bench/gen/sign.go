package gen

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Offsets of the signed part of each message (wire type included): BOLT 7
// signs the double SHA-256 of everything after the signature fields.
const (
	signedFromChannelAnn = 2 + 4*64
	signedFromChannelUpd = 2 + 64
	signedFromNodeAnn    = 2 + 64
)

// inboundFeeTLV is the type and length prefix of the inbound-fee record
// (type 55555 as BigSize fd d9 03, length 8) LND appends to channel_update.
var inboundFeeTLV = []byte{0xfd, 0xd9, 0x03, 0x08}

// message builds and signs the wire message of e, using buf as scratch.
// It only reads the network, so workers may call it concurrently.
func (n *Network) message(e *event, buf *bytes.Buffer) ([]byte, error) {
	buf.Reset()
	var msg lnwire.Message
	var keys []*btcec.PrivateKey
	var from int
	switch e.kind {
	case kindChannelAnn:
		ch := &n.Channels[e.idx]
		a := &lnwire.ChannelAnnouncement1{
			Features:        lnwire.NewRawFeatureVector(),
			ChainHash:       n.Params.Chain,
			ShortChannelID:  ch.SCID,
			NodeID1:         n.Nodes[ch.Nodes[0]].ID,
			NodeID2:         n.Nodes[ch.Nodes[1]].ID,
			ExtraOpaqueData: lnwire.ExtraOpaqueData{},
		}
		copy(a.BitcoinKey1[:], ch.BitcoinKeys[0].PubKey().SerializeCompressed())
		copy(a.BitcoinKey2[:], ch.BitcoinKeys[1].PubKey().SerializeCompressed())
		msg, from = a, signedFromChannelAnn
		keys = []*btcec.PrivateKey{n.Nodes[ch.Nodes[0]].Key, n.Nodes[ch.Nodes[1]].Key, ch.BitcoinKeys[0], ch.BitcoinKeys[1]}
	case kindChannelUpd:
		ch := &n.Channels[e.idx]
		node := &n.Nodes[ch.Nodes[e.dir]]
		flags := lnwire.ChanUpdateChanFlags(e.dir)
		if e.pol.Disabled {
			flags |= lnwire.ChanUpdateDisabled
		}
		u := &lnwire.ChannelUpdate1{
			ChainHash:       n.Params.Chain,
			ShortChannelID:  ch.SCID,
			Timestamp:       e.ts,
			MessageFlags:    lnwire.ChanUpdateRequiredMaxHtlc,
			ChannelFlags:    flags,
			TimeLockDelta:   e.pol.CLTVDelta,
			HtlcMinimumMsat: lnwire.MilliSatoshi(e.pol.HTLCMinMsat),
			BaseFee:         e.pol.FeeBaseMsat,
			FeeRate:         e.pol.FeePPM,
			HtlcMaximumMsat: lnwire.MilliSatoshi(e.pol.HTLCMaxMsat),
			ExtraOpaqueData: lnwire.ExtraOpaqueData{},
		}
		if f := node.InboundFee; f != nil {
			x := append([]byte(nil), inboundFeeTLV...)
			x = binary.BigEndian.AppendUint32(x, uint32(f[0]))
			u.ExtraOpaqueData = binary.BigEndian.AppendUint32(x, uint32(f[1]))
		}
		msg, from = u, signedFromChannelUpd
		keys = []*btcec.PrivateKey{node.Key}
	case kindNodeAnn:
		node := &n.Nodes[e.idx]
		msg = &lnwire.NodeAnnouncement{
			Features:        node.Features,
			Timestamp:       e.ts,
			NodeID:          node.ID,
			RGBColor:        node.RGB,
			Alias:           node.Alias,
			Addresses:       node.Addresses,
			ExtraOpaqueData: lnwire.ExtraOpaqueData{},
		}
		from = signedFromNodeAnn
		keys = []*btcec.PrivateKey{node.Key}
	default:
		return nil, fmt.Errorf("gen: unknown event kind %d", e.kind)
	}
	// Serialise with zero signatures, sign the tail, patch the
	// signatures in.
	if _, err := lnwire.WriteMessage(buf, msg, 0); err != nil {
		return nil, fmt.Errorf("encode %T: %w", msg, err)
	}
	b := bytes.Clone(buf.Bytes())
	digest := chainhash.DoubleHashB(b[from:])
	for k, key := range keys {
		sig := ecdsa.Sign(key, digest)
		r, s := sig.R(), sig.S()
		r.PutBytesUnchecked(b[2+64*k:])
		s.PutBytesUnchecked(b[2+64*k+32:])
	}
	return b, nil
}
