package gen

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Params selects what Build and Generate produce. The same Params and
// inputs always give byte-identical output.
type Params struct {
	// Seed drives every random choice and every generated key.
	Seed uint64
	// Channels is the network size: 0 or the snapshot's size keeps the
	// whole snapshot, fewer takes a connected sample (Topology.Sample),
	// more appends copies of the snapshot with fresh keys and scids (the
	// last one a sample), each copy a separate component.
	Channels int
	// Days is the length of the history after the initial graph.
	Days int
	// Start is the unix time (seconds) at which the history begins.
	Start int64
	// Chain is the chain hash put in every message.
	Chain chainhash.Hash
	// Workers is the number of signing goroutines; 0 means GOMAXPROCS.
	// It never changes the output.
	Workers int
}

// DefaultStart is the default history start: 2024-09-22 00:00 UTC, the
// date of the 2024 snapshot.
var DefaultStart = time.Date(2024, 9, 22, 0, 0, 0, 0, time.UTC).Unix()

// Chains maps the names the command accepts to genesis hashes.
var Chains = map[string]chainhash.Hash{
	"mainnet": *chaincfg.MainNetParams.GenesisHash,
	"regtest": *chaincfg.RegressionNetParams.GenesisHash,
}

// Presets maps scale names to channel counts; 0 means the whole snapshot
// and -3 three copies of it (see ResolveScale).
var Presets = map[string]int{"tiny": 300, "small": 3000, "mainnet": 0, "3x": -3}

// ResolveScale turns a preset name or a channel count into Params.Channels
// for a snapshot of snapshotChannels channels.
func ResolveScale(scale string, snapshotChannels int) (int, error) {
	if v, ok := Presets[scale]; ok {
		switch {
		case v == 0:
			return snapshotChannels, nil
		case v < 0:
			return -v * snapshotChannels, nil
		}
		return v, nil
	}
	var n int
	if _, err := fmt.Sscanf(scale, "%d", &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("gen: scale %q is neither a preset nor a positive channel count", scale)
	}
	return n, nil
}

// Node is a generated node: a real topology node under a generated key.
type Node struct {
	Key *btcec.PrivateKey
	// ID is the generated public key (compressed), the node_id on the wire.
	ID [33]byte
	// RealID is the snapshot's node id this node stands for (zero without
	// a node map). Copies of the snapshot share RealIDs.
	RealID    [33]byte
	Alias     lnwire.NodeAlias
	RGB       color.RGBA
	Addresses []net.Addr
	Features  *lnwire.RawFeatureVector
	// InboundFee, when set, is the inbound-fee TLV this node puts in
	// every channel_update.
	InboundFee *[2]int32
	// Copy is the index of the snapshot copy the node belongs to.
	Copy int
}

// Channel is a generated channel. Nodes[0] has the lesser node ID, so
// direction d of the channel is the half-channel signed by Nodes[d].
type Channel struct {
	SCID        lnwire.ShortChannelID
	Nodes       [2]int
	BitcoinKeys [2]*btcec.PrivateKey
	CapacitySat uint64
	// Policies are the policies at the start of the history (or at the
	// opening), per direction.
	Policies [2]Policy
	// OpenAt is when the channel is announced: before Params.Start for
	// channels of the initial graph.
	OpenAt int64
	// CloseAt is when the channel closes; 0 means never.
	CloseAt int64
}

// Network is the generated graph. It is read-only after Build.
type Network struct {
	Params   Params
	Topology *Topology
	Nodes    []Node
	Channels []Channel
	byID     map[[33]byte]int
	byReal   map[[33]byte]int
	scidFreq Frequencies
	nodeFreq Frequencies
	rank     []float64 // persistent frequency rank per channel, then per node
}

// Churn of the history: the share of the network's channels that open
// (resp. close) per day. Assumed, not measured: none of the datasets
// covers opening and closing rates.
const (
	OpenSharePerDay  = 0.005
	CloseSharePerDay = 0.005
)

// Block heights: mainnet block 840,000 was mined at 2024-04-20 00:09 UTC;
// blocks come every 600 s on average. The first public channels date from
// about block 505,000.
const (
	refHeight     = 840000
	refHeightTime = 1713571767
	firstHeight   = 505000
)

// TipAt returns the approximate mainnet block height at unix time t.
func TipAt(t int64) uint32 { return uint32(refHeight + (t-refHeightTime)/600) }

// NodeKey returns the generated private key of node index i (0-based over
// all copies) for seed. It is a pure function of its inputs.
func NodeKey(seed uint64, i int) *btcec.PrivateKey { return derive(seed, "node", i, 0) }

func derive(seed uint64, label string, i, j int) *btcec.PrivateKey {
	var b [8 + 8 + 8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	binary.BigEndian.PutUint64(b[16:], uint64(j))
	h := sha256.Sum256(append([]byte("lnsync-gen "+label), b[:]...))
	k, _ := btcec.PrivKeyFromBytes(h[:])
	return k
}

// Build turns topology into a Network for p: it samples or copies the
// topology to p.Channels, derives keys, scids, node attributes and the
// opening and closing times of channels.
func Build(topo *Topology, scidFreq, nodeFreq Frequencies, p Params) (*Network, error) {
	if p.Days < 0 || p.Start <= 0 {
		return nil, fmt.Errorf("gen: bad params: days %d start %d", p.Days, p.Start)
	}
	if len(scidFreq) == 0 || len(nodeFreq) == 0 {
		return nil, fmt.Errorf("gen: empty frequency tables")
	}
	want := p.Channels
	if want == 0 {
		want = len(topo.Channels)
	}
	var copies []*Topology
	for left := want; left > 0; {
		t := topo.Sample(left, p.Seed+uint64(len(copies)))
		copies = append(copies, t)
		left -= len(t.Channels)
	}
	n := &Network{Params: p, Topology: copies[0], byID: map[[33]byte]int{}, byReal: map[[33]byte]int{},
		scidFreq: scidFreq, nodeFreq: nodeFreq}
	rng := rand.New(rand.NewPCG(p.Seed, 0x6e6574)) // "net"

	// Nodes.
	var offsets []int
	for ci, t := range copies {
		offsets = append(offsets, len(n.Nodes))
		for _, tn := range t.Nodes {
			n.Nodes = append(n.Nodes, Node{RealID: tn.ID, Copy: ci})
		}
	}
	parallel(p.Workers, len(n.Nodes), func(i int) {
		k := NodeKey(p.Seed, i)
		n.Nodes[i].Key = k
		copy(n.Nodes[i].ID[:], k.PubKey().SerializeCompressed())
	})
	for ci, t := range copies {
		for i, tn := range t.Nodes {
			idx := offsets[ci] + i
			nd := &n.Nodes[idx]
			n.byID[nd.ID] = idx
			if ci == 0 && t.HasNodeMap {
				n.byReal[tn.ID] = idx
			}
			nd.Alias = makeAlias(tn.Alias, nd.ID)
			nd.RGB = color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 0}
			nd.Addresses = makeAddresses(rng)
			fs := NodeFeatureSets[weighted(rng, len(NodeFeatureSets), func(i int) int { return NodeFeatureSets[i].Count })]
			nd.Features = lnwire.NewRawFeatureVector()
			for _, b := range fs.Bits {
				nd.Features.Set(lnwire.FeatureBit(b))
			}
			if rng.Float64() < InboundFeeShare {
				f := InboundFees[weighted(rng, len(InboundFees), func(i int) int { return InboundFees[i].Count })]
				nd.InboundFee = &[2]int32{f.Base, f.PPM}
			}
		}
	}

	// Channels.
	total := 0
	for _, t := range copies {
		total += len(t.Channels)
	}
	n.Channels = make([]Channel, 0, total)
	horizon := int64(p.Days) * 86400
	usedSCID := map[uint64]bool{}
	tip := TipAt(p.Start)
	for ci, t := range copies {
		for _, tc := range t.Channels {
			ch := Channel{CapacitySat: tc.CapacitySat, Policies: tc.Policies,
				Nodes: [2]int{offsets[ci] + tc.Nodes[0], offsets[ci] + tc.Nodes[1]}}
			if bytes.Compare(n.Nodes[ch.Nodes[0]].ID[:], n.Nodes[ch.Nodes[1]].ID[:]) > 0 {
				ch.Nodes[0], ch.Nodes[1] = ch.Nodes[1], ch.Nodes[0]
				ch.Policies[0], ch.Policies[1] = ch.Policies[1], ch.Policies[0]
			}
			ch.OpenAt = p.Start - 1
			if horizon > 0 && rng.Float64() < OpenSharePerDay*float64(p.Days) {
				ch.OpenAt = p.Start + rng.Int64N(horizon)
			}
			if horizon > 0 && rng.Float64() < CloseSharePerDay*float64(p.Days) {
				c := p.Start + rng.Int64N(horizon)
				if c > ch.OpenAt+3600 {
					ch.CloseAt = c
				}
			}
			var height uint32
			if ch.OpenAt >= p.Start {
				height = TipAt(ch.OpenAt) - 6
			} else {
				age := uint32(rng.ExpFloat64() * 60000)
				height = tip - 6 - min(age, tip-6-firstHeight)
			}
			for {
				scid := lnwire.ShortChannelID{
					BlockHeight: height,
					TxIndex:     uint32(1 + math.Floor(3000*math.Pow(rng.Float64(), 2))),
					TxPosition:  uint16([]int{0, 0, 0, 0, 0, 1, 1, 1, 2, 3}[rng.IntN(10)]),
				}
				if !usedSCID[scid.ToUint64()] {
					usedSCID[scid.ToUint64()] = true
					ch.SCID = scid
					break
				}
			}
			n.Channels = append(n.Channels, ch)
		}
	}
	parallel(p.Workers, len(n.Channels), func(i int) {
		n.Channels[i].BitcoinKeys = [2]*btcec.PrivateKey{derive(p.Seed, "bitcoin", i, 0), derive(p.Seed, "bitcoin", i, 1)}
	})
	// Stratified ranks: every slice of the frequency distribution gets
	// its share of channels (and of nodes), so that a small network
	// does not depend on a lucky draw of the few very heavy senders.
	n.rank = append(stratified(rng, len(n.Channels)), stratified(rng, len(n.Nodes))...)
	return n, nil
}

// stratified returns n ranks in [0,1), one in each of n equal slices,
// in random order.
func stratified(rng *rand.Rand, n int) []float64 {
	out := make([]float64, n)
	for i, j := range rng.Perm(n) {
		out[i] = (float64(j) + rng.Float64()) / float64(n)
	}
	return out
}

// GeneratedID returns the generated node id standing for a real node id
// of the snapshot (first copy only), and whether the node is in the
// network.
func (n *Network) GeneratedID(real [33]byte) ([33]byte, bool) {
	i, ok := n.byReal[real]
	if !ok {
		return [33]byte{}, false
	}
	return n.Nodes[i].ID, true
}

// NodeIndex returns the index in Nodes of the node with generated id.
func (n *Network) NodeIndex(id [33]byte) (int, bool) {
	i, ok := n.byID[id]
	return i, ok
}

// makeAlias keeps the snapshot alias (cut to 32 bytes on a UTF-8
// boundary) or, when there is none, uses LND's default: the hex of the
// first 10 bytes of the node id.
func makeAlias(alias string, id [33]byte) lnwire.NodeAlias {
	if alias == "" {
		alias = hex.EncodeToString(id[:10])
	}
	for len(alias) > 32 || !utf8.ValidString(alias) {
		if len(alias) > 32 {
			alias = alias[:32]
		}
		alias = strings.ToValidUTF8(alias, "")
		if len(alias) > 32 {
			_, size := utf8.DecodeLastRuneInString(alias)
			alias = alias[:len(alias)-size]
		}
	}
	a, _ := lnwire.NewNodeAlias(alias)
	return a
}

var onionB32 = base32.StdEncoding.WithPadding(base32.NoPadding)

var dnsSuffixes = []string{"duckdns.org", "ddns.net", "com", "net", "io", "org", "de"}

// makeAddresses draws a node's address list in BOLT 7 type order.
func makeAddresses(rng *rand.Rand) []net.Addr {
	m := AddressMix[weighted(rng, len(AddressMix), func(i int) int { return AddressMix[i].Count })]
	var out []net.Addr
	port := func() int {
		if rng.Float64() < 0.97 {
			return 9735
		}
		return 1024 + rng.IntN(60000)
	}
	if m.IPv4 {
		// Public unicast: first octet 1..223, skipping 10, 100, 127, 169, 172, 192.
		var o1 int
		for {
			o1 = 1 + rng.IntN(223)
			if o1 != 10 && o1 != 100 && o1 != 127 && o1 != 169 && o1 != 172 && o1 != 192 {
				break
			}
		}
		ip := net.IPv4(byte(o1), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1+rng.IntN(254)))
		out = append(out, &net.TCPAddr{IP: ip.To4(), Port: port()})
	}
	if m.IPv6 {
		ip := make(net.IP, 16)
		binary.BigEndian.PutUint64(ip, 0x2000_0000_0000_0000|rng.Uint64()>>3)
		binary.BigEndian.PutUint64(ip[8:], rng.Uint64())
		out = append(out, &net.TCPAddr{IP: ip, Port: port()})
	}
	if m.Tor {
		// Tor v3: ed25519 key, 2-byte checksum, version 3 (rend-spec-v3).
		var b [37]byte
		for i := range 32 {
			b[i] = byte(rng.IntN(256))
		}
		b[34] = 3
		h := sha3.Sum256(append(append([]byte(".onion checksum"), b[:32]...), 3))
		copy(b[32:34], h[:2])
		binary.BigEndian.PutUint16(b[35:], uint16(port()))
		out = append(out, &lnwire.OpaqueAddrs{Payload: append([]byte{4}, b[:]...)})
	}
	if len(out) > 0 && rng.Float64() < DNSShare {
		host := fmt.Sprintf("%s.%s", strings.ToLower(onionB32.EncodeToString(binary.BigEndian.AppendUint32(nil, rng.Uint32()))[:6]),
			dnsSuffixes[rng.IntN(len(dnsSuffixes))])
		payload := append([]byte{5, byte(len(host))}, host...)
		payload = binary.BigEndian.AppendUint16(payload, 9735)
		out = append(out, &lnwire.OpaqueAddrs{Payload: payload})
	}
	return out
}

// parallel calls f(i) for i in [0,n) on workers goroutines (0 means
// GOMAXPROCS) and waits for all of them.
func parallel(workers, n int, f func(i int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	const chunk = 256
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				for i := lo; i < min(lo+chunk, n); i++ {
					f(i)
				}
			}
		}()
	}
	for lo := 0; lo < n; lo += chunk {
		next <- lo
	}
	close(next)
	wg.Wait()
}
