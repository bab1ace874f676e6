package gen

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/xi2/xz"
)

// Policy is one direction's routing policy as found in a topology snapshot.
type Policy struct {
	// Disabled is the channel_flags disable bit.
	Disabled bool
	// HTLCMinMsat and HTLCMaxMsat bound the HTLCs the direction forwards.
	HTLCMinMsat, HTLCMaxMsat uint64
	// FeeBaseMsat and FeePPM are the forwarding fee.
	FeeBaseMsat, FeePPM uint32
	// CLTVDelta is cltv_expiry_delta.
	CLTVDelta uint16
}

// TopoNode is one node of a topology snapshot.
type TopoNode struct {
	// ID is the real node id; all zero when the node map was not read.
	ID [33]byte
	// Alias is the node's alias from the node map ("" when unknown).
	Alias string
}

// TopoChannel is one channel of a topology snapshot. Policies[d] is the
// policy of the half-channel leaving Nodes[d].
type TopoChannel struct {
	Nodes       [2]int
	CapacitySat uint64
	Policies    [2]Policy
}

// Topology is a whole-network graph: real endpoints, capacities and
// policies, no scids, no keys, no signatures.
type Topology struct {
	// Name identifies the snapshot ("2024", "2026"), with a suffix when
	// sampled.
	Name     string
	Nodes    []TopoNode
	Channels []TopoChannel
	// HasNodeMap reports whether real node ids and aliases were read.
	HasNodeMap bool
	// ClampedHTLCMax counts directions whose htlc_maximum_msat exceeded
	// the capacity (or whose htlc_minimum_msat exceeded the maximum) in
	// the snapshot and was clamped.
	ClampedHTLCMax int
}

// Snapshots names the CLN topology snapshots under
// <datasets>/cln-mainnet-snapshots by their short name.
var Snapshots = map[string]string{
	"2024": "gossip-store-2024-09-22",
	"2026": "gossip-store-2026-02-03",
}

// LoadTopology reads the snapshot called name ("2024" or "2026") from
// datasetsDir. The node map (real ids, aliases) is xz-compressed and read
// only when withNodeMap is set. Without it nodes have no real id and no
// alias; everything else is identical.
func LoadTopology(ctx context.Context, datasetsDir, name string, withNodeMap bool) (*Topology, error) {
	base, ok := Snapshots[name]
	if !ok {
		return nil, fmt.Errorf("gen: unknown topology %q", name)
	}
	dir := filepath.Join(datasetsDir, "cln-mainnet-snapshots")
	f, err := os.Open(filepath.Join(dir, base+".compressed"))
	if err != nil {
		return nil, fmt.Errorf("open topology: %w", err)
	}
	defer f.Close()
	var nodeMap io.Reader
	if withNodeMap {
		if nodeMap, err = unxz(filepath.Join(dir, base+"-node-map.xz")); err != nil {
			return nil, err
		}
	}
	t, err := ReadTopology(f, nodeMap)
	if err != nil {
		return nil, fmt.Errorf("read topology %s: %w", name, err)
	}
	t.Name = name
	return t, nil
}

// unxz decompresses an xz file.
func unxz(path string) (io.Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open node map: %w", err)
	}
	defer f.Close()
	r, err := xz.NewReader(f, 0)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", filepath.Base(path), err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", filepath.Base(path), err)
	}
	return bytes.NewReader(out), nil
}

// ReadTopology parses a gossmap-compress file (gzip, as CLN writes it) and,
// when nodeMap is not nil, its decompressed node map ("index:id_hex:alias"
// lines).
func ReadTopology(compressed io.Reader, nodeMap io.Reader) (*Topology, error) {
	zr, err := gzip.NewReader(compressed)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	const magic = "GOSSMAP_COMPRESSv1\x00"
	if !bytes.HasPrefix(raw, []byte(magic)) {
		return nil, errors.New("not a gossmap-compress file")
	}
	d := &decoder{b: raw[len(magic):]}
	c := int(d.next())
	if d.err != nil || c <= 0 || c > 10_000_000 {
		return nil, fmt.Errorf("bad channel count %d: %v", c, d.err)
	}
	t := &Topology{Channels: make([]TopoChannel, c)}
	maxNode := 0
	for side := range 2 {
		for i := range c {
			n := int(d.next())
			t.Channels[i].Nodes[side] = n
			maxNode = max(maxNode, n)
		}
	}
	disabled := map[int]bool{}
	for {
		v := d.next()
		if d.err != nil || v == uint64(2*c) {
			break
		}
		disabled[int(v)] = true
	}
	caps := d.table(c)
	tables := make([][]uint64, 5)
	for i := range tables {
		tables[i] = d.table(2 * c)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b))
	}
	for i := range t.Channels {
		ch := &t.Channels[i]
		ch.CapacitySat = caps[i]
		for dir := range 2 {
			k := 2*i + dir
			p := Policy{
				HTLCMinMsat: tables[0][k],
				HTLCMaxMsat: tables[1][k],
				FeeBaseMsat: uint32(tables[2][k]),
				FeePPM:      uint32(tables[3][k]),
				CLTVDelta:   uint16(tables[4][k]),
			}
			switch p.HTLCMaxMsat {
			case 0:
				p.HTLCMaxMsat = ch.CapacitySat * 1000
			case 1:
				p.HTLCMaxMsat = ch.CapacitySat * 990
			}
			if p.HTLCMaxMsat > ch.CapacitySat*1000 {
				// Some snapshot policies exceed the capacity, which
				// BOLT 7 forbids and LND rejects: clamp.
				p.HTLCMaxMsat = ch.CapacitySat * 1000
				t.ClampedHTLCMax++
			}
			if p.HTLCMinMsat > p.HTLCMaxMsat {
				p.HTLCMinMsat = p.HTLCMaxMsat
				t.ClampedHTLCMax++
			}
			if disabled[k] {
				// A disabled direction's values are stored as 0:
				// give it a common default so it still reads as a
				// valid policy once re-enabled.
				p = Policy{Disabled: true, HTLCMinMsat: 1000, HTLCMaxMsat: ch.CapacitySat * 990,
					FeeBaseMsat: 1000, FeePPM: 1, CLTVDelta: 80}
			}
			ch.Policies[dir] = p
		}
	}
	t.Nodes = make([]TopoNode, maxNode+1)
	if nodeMap != nil {
		if err := t.readNodeMap(nodeMap); err != nil {
			return nil, fmt.Errorf("node map: %w", err)
		}
		t.HasNodeMap = true
	}
	return t, nil
}

func (t *Topology) readNodeMap(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	seen := 0
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			return fmt.Errorf("bad line %q", sc.Text())
		}
		idx, err := strconv.Atoi(parts[0])
		if err != nil || idx < 0 {
			return fmt.Errorf("bad index in %q", sc.Text())
		}
		id, err := hex.DecodeString(parts[1])
		if err != nil || len(id) != 33 {
			return fmt.Errorf("bad node id in %q", sc.Text())
		}
		if idx >= len(t.Nodes) {
			continue // a node without channels
		}
		copy(t.Nodes[idx].ID[:], id)
		t.Nodes[idx].Alias = parts[2]
		seen++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if seen < len(t.Nodes) {
		return fmt.Errorf("covers %d of %d nodes", seen, len(t.Nodes))
	}
	return nil
}

// decoder reads BigSize values; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) next() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = io.ErrUnexpectedEOF
		return 0
	}
	n := 0
	switch d.b[0] {
	case 0xFD:
		n = 3
	case 0xFE:
		n = 5
	case 0xFF:
		n = 9
	}
	if n == 0 {
		v := uint64(d.b[0])
		d.b = d.b[1:]
		return v
	}
	if len(d.b) < n {
		d.err = io.ErrUnexpectedEOF
		return 0
	}
	var v uint64
	switch n {
	case 3:
		v = uint64(binary.BigEndian.Uint16(d.b[1:]))
	case 5:
		v = uint64(binary.BigEndian.Uint32(d.b[1:]))
	default:
		v = binary.BigEndian.Uint64(d.b[1:])
	}
	d.b = d.b[n:]
	return v
}

// table reads a "distinct values, then n indexes" table.
func (d *decoder) table(n int) []uint64 {
	k := int(d.next())
	if d.err != nil || k > len(d.b) {
		d.err = fmt.Errorf("bad table size %d: %w", k, errors.Join(d.err, io.ErrUnexpectedEOF))
		return nil
	}
	vals := make([]uint64, k)
	for i := range vals {
		vals[i] = d.next()
	}
	out := make([]uint64, n)
	for i := range out {
		j := d.next()
		if j >= uint64(k) {
			if d.err == nil {
				d.err = fmt.Errorf("index %d beyond table of %d", j, k)
			}
			return nil
		}
		out[i] = vals[j]
	}
	return out
}

// Sample returns a connected sub-graph of about n channels, chosen
// deterministically from seed: a breadth-first snowball from a random node
// of degree at least 3 that follows at most 6 random channels of each node
// it reaches. Node indexes are renumbered densely in order of discovery.
// A topology with n or fewer channels is returned unchanged.
func (t *Topology) Sample(n int, seed uint64) *Topology {
	if n >= len(t.Channels) {
		return t
	}
	rng := rand.New(rand.NewPCG(seed, 0x73616d706c65)) // "sample"
	adj := make([][]int, len(t.Nodes))
	for i, ch := range t.Channels {
		adj[ch.Nodes[0]] = append(adj[ch.Nodes[0]], i)
		if ch.Nodes[1] != ch.Nodes[0] {
			adj[ch.Nodes[1]] = append(adj[ch.Nodes[1]], i)
		}
	}
	var start int
	for {
		start = rng.IntN(len(t.Nodes))
		if len(adj[start]) >= 3 {
			break
		}
	}
	const fanout = 6
	newIdx := map[int]int{start: 0}
	order := []int{start}
	taken := map[int]bool{}
	var chans []int
	for q := 0; q < len(order) && len(chans) < n; q++ {
		node := order[q]
		cand := slices.Clone(adj[node])
		rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
		took := 0
		for _, ci := range cand {
			if took == fanout || len(chans) == n {
				break
			}
			if taken[ci] {
				continue
			}
			taken[ci] = true
			chans = append(chans, ci)
			took++
			for _, end := range t.Channels[ci].Nodes {
				if _, ok := newIdx[end]; !ok {
					newIdx[end] = len(order)
					order = append(order, end)
				}
			}
		}
	}
	s := &Topology{Name: fmt.Sprintf("%s-sample%d", t.Name, n), HasNodeMap: t.HasNodeMap}
	s.Nodes = make([]TopoNode, len(order))
	for i, old := range order {
		s.Nodes[i] = t.Nodes[old]
	}
	for _, ci := range chans {
		ch := t.Channels[ci]
		ch.Nodes = [2]int{newIdx[ch.Nodes[0]], newIdx[ch.Nodes[1]]}
		s.Channels = append(s.Channels, ch)
	}
	return s
}
