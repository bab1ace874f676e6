package rgs

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// maxDefaultNodeFeatures is the size of the version 2 default node feature list.
const maxDefaultNodeFeatures = 6

// flushSize is how much EncodeTo buffers before writing.
const flushSize = 64 << 10

// Encode returns the file for d in the given version (Version1 or Version2).
// Version 1 leaves out node data and funding amounts. See the package comment for
// the deterministic choices and Delta for the ordering Encode requires.
func (d *Delta) Encode(version int) ([]byte, error) {
	return d.AppendEncode(nil, version)
}

// AppendEncode appends the file for d to b.
func (d *Delta) AppendEncode(b []byte, version int) ([]byte, error) {
	e := encoder{buf: b}
	if err := e.encode(d, version); err != nil {
		return b, err
	}
	return e.buf, nil
}

// EncodeTo writes the file for d to w in chunks, returning the bytes written.
// On error nothing useful has been written; callers discard the output.
func (d *Delta) EncodeTo(w io.Writer, version int) (int64, error) {
	e := encoder{w: w, buf: make([]byte, 0, flushSize+4096)}
	if err := e.encode(d, version); err != nil {
		return e.n, err
	}
	if err := e.flush(); err != nil {
		return e.n, err
	}
	return e.n, nil
}

type encoder struct {
	buf []byte
	w   io.Writer // nil: keep everything in buf
	n   int64
}

// maybeFlush writes buf out when streaming and it has grown past flushSize.
func (e *encoder) maybeFlush() error {
	if e.w == nil || len(e.buf) < flushSize {
		return nil
	}
	return e.flush()
}

func (e *encoder) flush() error {
	if e.w == nil || len(e.buf) == 0 {
		return nil
	}
	n, err := e.w.Write(e.buf)
	e.n += int64(n)
	e.buf = e.buf[:0]
	if err != nil {
		return fmt.Errorf("write rgs: %w", err)
	}
	return nil
}

// plan is the validated layout of a Delta: node table and defaults.
type plan struct {
	table       []NodeID          // node table in order
	index       map[NodeID]uint32 // node id -> table index
	nodeData    map[NodeID]*NodeDelta
	defFeatures [][]byte
	defaults    Policy
}

func (e *encoder) encode(d *Delta, version int) error {
	if version != Version1 && version != Version2 {
		return fmt.Errorf("encode version %d: %w", version, ErrUnknownVersion)
	}
	p, err := newPlan(d, version)
	if err != nil {
		return err
	}
	if len(p.table) > MaxNodeCount {
		return fmt.Errorf("%d nodes: %w", len(p.table), ErrNonsenseCount)
	}
	if len(d.Updates) > MaxUpdateCount {
		return fmt.Errorf("%d updates: %w", len(d.Updates), ErrNonsenseCount)
	}
	if e.w == nil {
		e.buf = slices.Grow(e.buf, estimateSize(d, p, version))
	}

	b := append(e.buf, 'L', 'D', 'K', byte(version))
	b = append(b, d.ChainHash[:]...)
	b = binary.BigEndian.AppendUint32(b, d.Timestamp)
	if version == Version2 {
		b = append(b, byte(len(p.defFeatures)))
		for _, f := range p.defFeatures {
			b = appendFeatures(b, f)
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.table)))
	e.buf = b
	for _, id := range p.table {
		if version == Version1 {
			e.buf = append(e.buf, id[:]...)
		} else {
			e.buf = p.appendNodeV2(e.buf, id)
		}
		if err := e.maybeFlush(); err != nil {
			return err
		}
	}

	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(d.Announcements)))
	var prev uint64
	for i := range d.Announcements {
		a := &d.Announcements[i]
		b := appendFeatures(e.buf, a.Features)
		b = appendBigSize(b, a.SCID-prev)
		prev = a.SCID
		b = appendBigSize(b, uint64(p.index[a.NodeID1]))
		n2 := uint64(p.index[a.NodeID2])
		if version == Version2 && a.FundingKnown {
			b = appendBigSize(b, n2|1<<63)
			b = binary.BigEndian.AppendUint16(b, uint16(bigSizeLen(a.FundingSats)))
			b = appendBigSize(b, a.FundingSats)
		} else {
			b = appendBigSize(b, n2)
		}
		e.buf = b
		if err := e.maybeFlush(); err != nil {
			return err
		}
	}

	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(d.Updates)))
	if len(d.Updates) == 0 {
		return nil
	}
	e.buf = appendPolicy(e.buf, p.defaults, AllFields)
	prev = 0
	for i := range d.Updates {
		u := &d.Updates[i]
		b := appendBigSize(e.buf, u.SCID-prev)
		prev = u.SCID
		flags := u.Direction
		if u.Disabled {
			flags |= 0x02
		}
		var fields Field
		switch u.Kind {
		case Full:
			fields = u.Policy.fieldsDiffering(p.defaults)
		case Incremental:
			flags |= 0x80
			fields = u.Changed
		case Reminder:
			flags |= 0x80
		}
		b = append(b, flags|byte(fields))
		e.buf = appendPolicy(b, u.Policy, fields)
		if err := e.maybeFlush(); err != nil {
			return err
		}
	}
	return nil
}

func appendFeatures(b []byte, f []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
	return append(b, f...)
}

func appendPolicy(b []byte, p Policy, fields Field) []byte {
	if fields&FieldCLTVExpiryDelta != 0 {
		b = binary.BigEndian.AppendUint16(b, p.CLTVExpiryDelta)
	}
	if fields&FieldHTLCMinimumMsat != 0 {
		b = binary.BigEndian.AppendUint64(b, p.HTLCMinimumMsat)
	}
	if fields&FieldFeeBaseMsat != 0 {
		b = binary.BigEndian.AppendUint32(b, p.FeeBaseMsat)
	}
	if fields&FieldFeeProportionalMillionths != 0 {
		b = binary.BigEndian.AppendUint32(b, p.FeeProportionalMillionths)
	}
	if fields&FieldHTLCMaximumMsat != 0 {
		b = binary.BigEndian.AppendUint64(b, p.HTLCMaximumMsat)
	}
	return b
}

// appendNodeV2 appends a version 2 node entry: flag byte, x coordinate, then the
// address list and explicit features when flagged.
func (p *plan) appendNodeV2(b []byte, id NodeID) []byte {
	nd := p.nodeData[id]
	flag := id[0] & 0x03
	marker := byte(0)
	if nd != nil {
		if nd.HasAddresses {
			flag |= 0x04
		}
		if nd.HasFeatures {
			marker = 7
			for i, f := range p.defFeatures {
				if bytes.Equal(f, nd.Features) {
					marker = byte(i + 1)
					break
				}
			}
			flag |= marker << 3
		}
		if nd.Reminder {
			flag |= 0x40
		}
	}
	b = append(b, flag)
	b = append(b, id[1:]...)
	if nd == nil {
		return b
	}
	if nd.HasAddresses {
		b = append(b, byte(len(nd.Addresses)))
		for _, a := range nd.Addresses {
			b = append(b, byte(len(a)))
			b = append(b, a...)
		}
	}
	if marker == 7 {
		b = appendFeatures(b, nd.Features)
	}
	return b
}

// newPlan validates d and computes the node table and defaults.
func newPlan(d *Delta, version int) (*plan, error) {
	p := &plan{index: make(map[NodeID]uint32, len(d.Announcements))}
	add := func(id NodeID) {
		if _, ok := p.index[id]; !ok {
			p.index[id] = uint32(len(p.table))
			p.table = append(p.table, id)
		}
	}
	for i := range d.Announcements {
		a := &d.Announcements[i]
		if i > 0 {
			prev := d.Announcements[i-1].SCID
			if a.SCID == prev {
				return nil, fmt.Errorf("announcement scid %d: %w", a.SCID, ErrDuplicate)
			}
			if a.SCID < prev {
				return nil, fmt.Errorf("announcement scid %d after %d: %w", a.SCID, prev, ErrUnsorted)
			}
		}
		if len(a.Features) > 0xffff {
			return nil, fmt.Errorf("announcement scid %d: %d feature bytes: %w", a.SCID, len(a.Features), ErrInvalidDelta)
		}
		if err := checkNodeID(a.NodeID1); err != nil {
			return nil, fmt.Errorf("announcement scid %d node_id_1: %w", a.SCID, err)
		}
		if err := checkNodeID(a.NodeID2); err != nil {
			return nil, fmt.Errorf("announcement scid %d node_id_2: %w", a.SCID, err)
		}
		switch c := bytes.Compare(a.NodeID1[:], a.NodeID2[:]); {
		case c == 0:
			return nil, fmt.Errorf("announcement scid %d: %w", a.SCID, ErrSameNode)
		case c > 0:
			return nil, fmt.Errorf("announcement scid %d: %w", a.SCID, ErrNodeOrder)
		}
		add(a.NodeID1)
		add(a.NodeID2)
	}

	for i := range d.Updates {
		u := &d.Updates[i]
		if u.Direction > 1 {
			return nil, fmt.Errorf("update scid %d: direction %d: %w", u.SCID, u.Direction, ErrInvalidDelta)
		}
		if u.Kind > Reminder {
			return nil, fmt.Errorf("update scid %d: %v: %w", u.SCID, u.Kind, ErrInvalidDelta)
		}
		if u.Kind == Incremental && u.Changed&^AllFields != 0 {
			return nil, fmt.Errorf("update scid %d: changed %#x: %w", u.SCID, u.Changed, ErrInvalidDelta)
		}
		if i > 0 {
			q := &d.Updates[i-1]
			switch {
			case u.SCID == q.SCID && u.Direction == q.Direction:
				return nil, fmt.Errorf("update scid %d direction %d: %w", u.SCID, u.Direction, ErrDuplicate)
			case u.SCID < q.SCID || (u.SCID == q.SCID && u.Direction < q.Direction):
				return nil, fmt.Errorf("update scid %d direction %d after scid %d direction %d: %w",
					u.SCID, u.Direction, q.SCID, q.Direction, ErrUnsorted)
			}
		}
	}
	p.defaults = updateDefaults(d.Updates)

	if version == Version1 {
		return p, nil
	}
	p.nodeData = make(map[NodeID]*NodeDelta, len(d.Nodes))
	var extra []NodeID
	for i := range d.Nodes {
		nd := &d.Nodes[i]
		if _, dup := p.nodeData[nd.NodeID]; dup {
			return nil, fmt.Errorf("node %v: %w", nd.NodeID, ErrDuplicate)
		}
		if err := checkNodeID(nd.NodeID); err != nil {
			return nil, fmt.Errorf("node %v: %w", nd.NodeID, err)
		}
		if len(nd.Addresses) > 255 {
			return nil, fmt.Errorf("node %v: %d addresses: %w", nd.NodeID, len(nd.Addresses), ErrInvalidDelta)
		}
		for _, a := range nd.Addresses {
			if len(a) > 255 {
				return nil, fmt.Errorf("node %v: address of %d bytes: %w", nd.NodeID, len(a), ErrInvalidDelta)
			}
			if err := a.check(); err != nil {
				return nil, fmt.Errorf("node %v: %w", nd.NodeID, err)
			}
		}
		if len(nd.Features) > 0xffff {
			return nil, fmt.Errorf("node %v: %d feature bytes: %w", nd.NodeID, len(nd.Features), ErrInvalidDelta)
		}
		p.nodeData[nd.NodeID] = nd
		if _, ok := p.index[nd.NodeID]; !ok && (nd.HasAddresses || nd.HasFeatures || nd.Reminder) {
			extra = append(extra, nd.NodeID)
		}
	}
	slices.SortFunc(extra, func(a, b NodeID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range extra {
		add(id)
	}
	p.defFeatures = defaultNodeFeatures(d.Nodes, p.index)
	return p, nil
}

// checkNodeID rejects ids that cannot be a compressed key: the version 2 flag
// byte only carries the 02/03 prefix.
func checkNodeID(id NodeID) error {
	if id[0] != 0x02 && id[0] != 0x03 {
		return fmt.Errorf("node id prefix %#02x: %w", id[0], ErrInvalidDelta)
	}
	return nil
}

// updateDefaults returns, per field, the most frequent value among the full
// updates, ties to the smallest value, 0 when there is none.
func updateDefaults(updates []Update) Policy {
	n := 0
	for i := range updates {
		if updates[i].Kind == Full {
			n++
		}
	}
	buf := make([]uint64, 0, n)
	field := func(get func(*Policy) uint64) uint64 {
		buf = buf[:0]
		for i := range updates {
			if updates[i].Kind == Full {
				buf = append(buf, get(&updates[i].Policy))
			}
		}
		return mode(buf)
	}
	return Policy{
		CLTVExpiryDelta:           uint16(field(func(p *Policy) uint64 { return uint64(p.CLTVExpiryDelta) })),
		HTLCMinimumMsat:           field(func(p *Policy) uint64 { return p.HTLCMinimumMsat }),
		FeeBaseMsat:               uint32(field(func(p *Policy) uint64 { return uint64(p.FeeBaseMsat) })),
		FeeProportionalMillionths: uint32(field(func(p *Policy) uint64 { return uint64(p.FeeProportionalMillionths) })),
		HTLCMaximumMsat:           field(func(p *Policy) uint64 { return p.HTLCMaximumMsat }),
	}
}

// mode returns the most frequent value of v, the smallest among equals, 0 for an
// empty v. It sorts v.
func mode(v []uint64) uint64 {
	slices.Sort(v)
	var best uint64
	bestN := 0
	for i := 0; i < len(v); {
		j := i + 1
		for j < len(v) && v[j] == v[i] {
			j++
		}
		if j-i > bestN { // strictly more: the first (smallest) value wins ties
			best, bestN = v[i], j-i
		}
		i = j
	}
	return best
}

// defaultNodeFeatures returns up to six feature encodings used by more than one
// written node entry, most used first, ties to the smallest encoding.
func defaultNodeFeatures(nodes []NodeDelta, written map[NodeID]uint32) [][]byte {
	// Pointer values: only a new encoding allocates its key.
	counts := make(map[string]*int)
	for i := range nodes {
		nd := &nodes[i]
		if !nd.HasFeatures {
			continue
		}
		if _, ok := written[nd.NodeID]; !ok {
			continue
		}
		if n := counts[string(nd.Features)]; n != nil {
			*n++
		} else {
			counts[string(nd.Features)] = new(1)
		}
	}
	type fc struct {
		f string
		n int
	}
	var list []fc
	for f, n := range counts {
		if *n > 1 {
			list = append(list, fc{f, *n})
		}
	}
	slices.SortFunc(list, func(a, b fc) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.f, b.f)
	})
	if len(list) > maxDefaultNodeFeatures {
		list = list[:maxDefaultNodeFeatures]
	}
	out := make([][]byte, len(list))
	for i, e := range list {
		out[i] = []byte(e.f)
	}
	return out
}

// estimateSize returns an upper-bound guess of the encoded size.
func estimateSize(d *Delta, p *plan, version int) int {
	n := 4 + 32 + 4 + 1 + 12 + 26 + len(p.table)*33
	for _, f := range p.defFeatures {
		n += 2 + len(f)
	}
	if version == Version2 {
		for i := range d.Nodes {
			nd := &d.Nodes[i]
			n += 1 + 2 + len(nd.Features)
			for _, a := range nd.Addresses {
				n += 1 + len(a)
			}
		}
	}
	for i := range d.Announcements {
		n += 2 + len(d.Announcements[i].Features) + 9 + 9 + 9 + 2 + 9
	}
	n += len(d.Updates) * (9 + 1 + 26)
	return n
}
