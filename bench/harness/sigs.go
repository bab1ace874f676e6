package harness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/gsp"
)

// Offsets of the signed part of each gossip message (wire type included):
// BOLT 7 signs the double SHA-256 of everything after the signatures.
const (
	signedFromAnnouncement = 2 + 4*64
	signedFromSingle       = 2 + 64
)

// SignatureCheck is one ECDSA signature check of a gossip message: the
// digest, the signature and the parsed key, ready to verify.
type SignatureCheck struct {
	digest chainhash.Hash
	sig    lnwire.Sig
	key    *btcec.PublicKey
}

func (c SignatureCheck) verify() bool {
	s, err := c.sig.ToSignature()
	return err == nil && s.Verify(c.digest[:], c.key)
}

// ChannelNodes maps an scid to the node ids of its announcement, against
// which a channel_update's signature is checked.
type ChannelNodes map[uint64][2][33]byte

// errUnknownChannel means a channel_update's channel was not announced
// earlier in the files.
var errUnknownChannel = errors.New("channel_update of a channel not announced before it")

// signatureChecks appends the signature checks of one wire message to out
// and records a channel announcement's node ids in nodes.
func signatureChecks(wire []byte, nodes ChannelNodes, out []SignatureCheck) ([]SignatureCheck, error) {
	msg, err := lnwire.ReadMessage(bytes.NewReader(wire), 0)
	if err != nil {
		return out, fmt.Errorf("decode: %w", err)
	}
	key := func(raw [33]byte) (*btcec.PublicKey, error) { return btcec.ParsePubKey(raw[:]) }
	switch m := msg.(type) {
	case *lnwire.ChannelAnnouncement1:
		digest := chainhash.DoubleHashH(wire[signedFromAnnouncement:])
		ids := [4][33]byte{m.NodeID1, m.NodeID2, m.BitcoinKey1, m.BitcoinKey2}
		sigs := [4]lnwire.Sig{m.NodeSig1, m.NodeSig2, m.BitcoinSig1, m.BitcoinSig2}
		for i := range ids {
			k, err := key(ids[i])
			if err != nil {
				return out, err
			}
			out = append(out, SignatureCheck{digest: digest, sig: sigs[i], key: k})
		}
		nodes[m.ShortChannelID.ToUint64()] = [2][33]byte{m.NodeID1, m.NodeID2}
	case *lnwire.ChannelUpdate1:
		ids, ok := nodes[m.ShortChannelID.ToUint64()]
		if !ok {
			return out, errUnknownChannel
		}
		k, err := key(ids[m.ChannelFlags&lnwire.ChanUpdateDirection])
		if err != nil {
			return out, err
		}
		out = append(out, SignatureCheck{digest: chainhash.DoubleHashH(wire[signedFromSingle:]), sig: m.Signature, key: k})
	case *lnwire.NodeAnnouncement:
		k, err := key(m.NodeID)
		if err != nil {
			return out, err
		}
		out = append(out, SignatureCheck{digest: chainhash.DoubleHashH(wire[signedFromSingle:]), sig: m.Signature, key: k})
	default:
		return out, fmt.Errorf("message type %d is not gossip", binary.BigEndian.Uint16(wire))
	}
	return out, nil
}

// sampleChecks appends the signature checks of rec to out when keep is
// set. A channel announcement is read either way, for its node ids.
func sampleChecks(rec gsp.Record, keep bool, nodes ChannelNodes, out []SignatureCheck) ([]SignatureCheck, error) {
	if !keep && rec.Type != gsp.TypeChannelAnnouncement {
		return out, nil
	}
	n := len(out)
	out, err := signatureChecks(rec.Msg, nodes, out)
	if err != nil || keep {
		return out, err
	}
	return out[:n], nil
}

// SignatureChecks reads the GSP files and returns the signature checks of
// an even sample of their messages, limit checks in all (fewer only when the
// files hold fewer). Channel updates are checked against nodes (LoadTrusted's
// map) or against announcements earlier in the files.
func SignatureChecks(files []string, nodes ChannelNodes, limit int) ([]SignatureCheck, error) {
	total := 0
	for _, path := range files {
		if err := gsp.ReadFile(path, func(gsp.Record) error { total++; return nil }); err != nil {
			return nil, err
		}
	}
	every := max(1, total/max(limit, 1))
	var out []SignatureCheck
	i := 0
	for _, path := range files {
		err := gsp.ReadFile(path, func(rec gsp.Record) error {
			keep := i%every == 0 && len(out) < limit
			i++
			var err error
			if out, err = sampleChecks(rec, keep, nodes, out); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out[:min(len(out), limit)], nil
}

// VerifyRate checks the signatures of checks on every core, round after
// round, for at least d, and returns checks per second. It fails on the
// first signature that does not verify.
func VerifyRate(checks []SignatureCheck, d time.Duration) (float64, error) {
	if len(checks) == 0 {
		return 0, errors.New("no signatures to check")
	}
	var done atomic.Int64
	var bad atomic.Bool
	workers := runtime.GOMAXPROCS(0)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; !bad.Load(); i += workers {
				if i >= len(checks) {
					if time.Now().After(deadline) {
						return
					}
					i = w - workers
					continue
				}
				if !checks[i].verify() {
					bad.Store(true)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() {
		return 0, errors.New("a signature does not verify")
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}
