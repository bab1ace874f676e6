// Package rgstest builds random but reproducible rgs.Delta values for tests,
// benchmarks and the conformance harness. Every node id it makes is a valid
// secp256k1 key, every announcement has node_id_1 < node_id_2, and the result is
// sorted as rgs.Delta.Encode requires.
package rgstest

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/lnsync/lnsync/rgs"
)

// Options shapes a random delta. Zero values pick small defaults.
type Options struct {
	// Chain is the chain hash; zero means mainnet.
	Chain [32]byte
	// Timestamp is the header timestamp; zero means 1_700_000_000.
	Timestamp uint32
	// Nodes is the number of distinct nodes (at least 2).
	Nodes int
	// Channels is the number of announced channels.
	Channels int
	// OneDirection is the fraction of channels with a single direction's
	// update; the others get both.
	OneDirection float64
	// Disabled is the fraction of updates with the disabled bit.
	Disabled float64
	// NodeData is the fraction of nodes given version 2 node data.
	NodeData float64
	// Reminders is the fraction of node data entries that are reminders.
	Reminders float64
	// UnfundedFraction is the fraction of announcements without a funding
	// amount.
	UnfundedFraction float64
}

// Keys returns n distinct valid node ids derived from seed, sorted ascending.
func Keys(seed uint64, n int) []rgs.NodeID {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := make(map[rgs.NodeID]bool, n)
	out := make([]rgs.NodeID, 0, n)
	var sk [32]byte
	for len(out) < n {
		for i := 0; i < 32; i += 8 {
			binary.BigEndian.PutUint64(sk[i:], rng.Uint64())
		}
		_, pub := btcec.PrivKeyFromBytes(sk[:])
		var id rgs.NodeID
		copy(id[:], pub.SerializeCompressed())
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b rgs.NodeID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// SCID builds a short channel id from block height, transaction index and output.
func SCID(block, tx uint32, out uint16) uint64 {
	return uint64(block&0xffffff)<<40 | uint64(tx&0xffffff)<<16 | uint64(out)
}

// Common feature vectors used for node data (wire order).
var nodeFeatureSets = [][]byte{
	{0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x69, 0xa2},
	{0x80, 0x00, 0x08, 0x82, 0x69, 0xa2},
	{0x88, 0x82, 0x69, 0xa2},
	{0x02, 0x00, 0x00, 0x02, 0x02, 0x69, 0xa2},
	{0x0a, 0x69, 0xa2},
	{0x82, 0x69, 0xa2},
	{0x08, 0xa2},
	{},
}

// Policy returns a realistic random policy for a channel of capacity sats.
func Policy(rng *rand.Rand, capacity uint64) rgs.Policy {
	p := rgs.Policy{
		CLTVExpiryDelta:           pick(rng, []uint16{40, 40, 40, 144, 144, 80, 34, 18, 72}),
		HTLCMinimumMsat:           pick(rng, []uint64{1000, 1000, 1, 1, 0, 1000, 546000}),
		FeeBaseMsat:               pick(rng, []uint32{1000, 1000, 0, 0, 1, 100, uint32(rng.IntN(5000))}),
		FeeProportionalMillionths: pick(rng, []uint32{1, 1, 100, 500, 2500, uint32(rng.IntN(3000)), 0}),
	}
	switch rng.IntN(4) {
	case 0:
		p.HTLCMaximumMsat = capacity * 1000
	case 1:
		p.HTLCMaximumMsat = capacity * 990
	default:
		p.HTLCMaximumMsat = pick(rng, []uint64{990_000_000, 5_000_000_000, capacity * 500})
	}
	return p
}

func pick[T any](rng *rand.Rand, v []T) T { return v[rng.IntN(len(v))] }

// Address returns a random address descriptor of the given BOLT 7 type.
func Address(rng *rand.Rand, typ int) rgs.Address {
	port := uint16(9735)
	if rng.IntN(3) == 0 {
		port = uint16(1024 + rng.IntN(60000))
	}
	var a net.Addr
	switch typ {
	case rgs.AddrIPv4:
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, rng.Uint32()|0x01000000)
		a = &net.TCPAddr{IP: ip, Port: int(port)}
	case rgs.AddrIPv6:
		ip := make(net.IP, 16)
		binary.BigEndian.PutUint64(ip, 0x2001_0db8_0000_0000|rng.Uint64()&0xffff_ffff)
		binary.BigEndian.PutUint64(ip[8:], rng.Uint64())
		a = &net.TCPAddr{IP: ip, Port: int(port)}
	case rgs.AddrTorV3:
		b := make([]byte, 38)
		b[0] = rgs.AddrTorV3
		for i := 1; i < 33; i++ {
			b[i] = byte(rng.Uint32())
		}
		binary.BigEndian.PutUint16(b[33:], uint16(rng.Uint32()))
		b[35] = 3
		binary.BigEndian.PutUint16(b[36:], port)
		return b
	case rgs.AddrTorV2:
		b := make([]byte, 13)
		b[0] = rgs.AddrTorV2
		for i := 1; i < 11; i++ {
			b[i] = byte(rng.Uint32())
		}
		binary.BigEndian.PutUint16(b[11:], port)
		return b
	case rgs.AddrHostname:
		host := pick(rng, []string{"node", "ln", "lightning", "lnd", "cln"}) +
			string(rune('a'+rng.IntN(26))) + "." + pick(rng, []string{"example.com", "example.org", "my-node.net"})
		a = &rgs.DNSAddr{Hostname: host, Port: port}
	default:
		return rgs.Address{byte(typ), 1, 2, 3}
	}
	addr, err := rgs.NewAddress(a)
	if err != nil {
		panic(err)
	}
	return addr
}

// Delta returns a random full-snapshot style delta: every channel announced with
// full updates, plus node data.
func Delta(seed uint64, o Options) *rgs.Delta {
	if o.Nodes < 2 {
		o.Nodes = 2
	}
	if o.Chain == ([32]byte{}) {
		o.Chain = rgs.ChainMainnet
	}
	if o.Timestamp == 0 {
		o.Timestamp = 1_700_000_000
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	keys := Keys(seed, o.Nodes)
	d := &rgs.Delta{ChainHash: o.Chain, Timestamp: o.Timestamp}

	scids := make(map[uint64]bool, o.Channels)
	for len(d.Announcements) < o.Channels {
		scid := SCID(uint32(500_000+rng.IntN(400_000)), uint32(rng.IntN(3000)), uint16(rng.IntN(4)))
		if scids[scid] {
			continue
		}
		scids[scid] = true
		// Skewed degree: low indices are hubs.
		i := int(float64(o.Nodes) * rng.Float64() * rng.Float64())
		j := rng.IntN(o.Nodes)
		if i == j {
			j = (j + 1) % o.Nodes
		}
		if i > j {
			i, j = j, i
		}
		capacity := pick(rng, []uint64{100_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 16_777_215, 100_000_000}) +
			uint64(rng.IntN(1000))
		a := rgs.Announcement{
			SCID:         scid,
			Features:     []byte{},
			NodeID1:      keys[i],
			NodeID2:      keys[j],
			FundingSats:  capacity,
			FundingKnown: rng.Float64() >= o.UnfundedFraction,
		}
		if !a.FundingKnown {
			a.FundingSats = 0
		}
		d.Announcements = append(d.Announcements, a)
		dirs := []uint8{0, 1}
		if rng.Float64() < o.OneDirection {
			dirs = []uint8{uint8(rng.IntN(2))}
		}
		for _, dir := range dirs {
			d.Updates = append(d.Updates, rgs.Update{
				SCID:      scid,
				Direction: dir,
				Disabled:  rng.Float64() < o.Disabled,
				Kind:      rgs.Full,
				Policy:    Policy(rng, capacity),
			})
		}
	}

	used := make(map[rgs.NodeID]bool)
	for _, a := range d.Announcements {
		used[a.NodeID1], used[a.NodeID2] = true, true
	}
	for _, id := range keys {
		if !used[id] || rng.Float64() >= o.NodeData {
			continue
		}
		nd := rgs.NodeDelta{NodeID: id}
		if rng.Float64() < o.Reminders {
			nd.Reminder = true
		} else {
			nd.HasFeatures = true
			nd.Features = pick(rng, nodeFeatureSets)
			if rng.IntN(20) == 0 {
				nd.Features = []byte{byte(rng.Uint32()), byte(rng.Uint32()), 0x69, 0xa2}
			}
			nd.HasAddresses = true
			for range rng.IntN(4) {
				typ := pick(rng, []int{rgs.AddrIPv4, rgs.AddrIPv4, rgs.AddrIPv6, rgs.AddrTorV3, rgs.AddrHostname})
				nd.Addresses = append(nd.Addresses, Address(rng, typ))
			}
		}
		d.Nodes = append(d.Nodes, nd)
	}
	d.Sort()
	return d
}
