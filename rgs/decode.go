package rgs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Hash is a 32-byte hash as written in an RGS header (internal byte order). It
// marshals as hex in that order.
type Hash [32]byte

// MarshalText encodes the hash as lowercase hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h[:])), nil }

// File is the wire-level content of an RGS file as Decode reads it.
type File struct {
	Version   int    `json:"version"`
	ChainHash Hash   `json:"chain_hash"`
	Chain     string `json:"chain,omitempty"`
	// Timestamp is latest_seen.
	Timestamp uint32 `json:"timestamp"`
	// DefaultNodeFeatures is the version 2 default feature list.
	DefaultNodeFeatures []Features          `json:"default_node_features"`
	Nodes               []NodeEntry         `json:"nodes"`
	Announcements       []AnnouncementEntry `json:"announcements"`
	// Defaults is nil when the file has no updates (the client stops reading
	// after the zero update count).
	Defaults *Policy       `json:"defaults"`
	Updates  []UpdateEntry `json:"updates"`
	// Size is the input length; Trailing is how many bytes follow the last
	// parsed entry (clients ignore them).
	Size     int `json:"size"`
	Trailing int `json:"trailing"`
}

// NodeEntry is one node table entry.
type NodeEntry struct {
	// NodeID is the real compressed key (in version 2 with the prefix restored
	// from the flag byte).
	NodeID NodeID `json:"node_id"`
	// Flags is the version 2 flag byte (0 in version 1).
	Flags        uint8     `json:"flags"`
	HasAddresses bool      `json:"has_addresses"`
	Addresses    []Address `json:"addresses"`
	// FeatureMarker is 0 (no features), 1..6 (default list entry) or 7
	// (explicit features).
	FeatureMarker uint8 `json:"feature_marker"`
	// Features holds the node features, resolved from the default list when
	// FeatureMarker is 1..6.
	Features Features `json:"features"`
	Reminder bool     `json:"reminder"`
	// Extra is the forward-compatibility data of flag bit 7, ignored by
	// clients.
	Extra Features `json:"extra,omitempty"`
}

// hasData reports whether the entry carries node data clients apply.
func (n *NodeEntry) hasData() bool {
	return n.HasAddresses || n.FeatureMarker != 0 || n.Reminder
}

// AnnouncementEntry is one channel announcement entry.
type AnnouncementEntry struct {
	SCID      uint64   `json:"scid"`
	SCIDDelta uint64   `json:"scid_delta"`
	Features  Features `json:"features"`
	// Node1Index and Node2Index index File.Nodes (bit 63 masked off).
	Node1Index uint64 `json:"node_1_index"`
	Node2Index uint64 `json:"node_2_index"`
	NodeID1    NodeID `json:"node_id_1"`
	NodeID2    NodeID `json:"node_id_2"`
	// HasExtra says bit 63 of the node_2 index was set and (version 2) an
	// extra byte vector followed.
	HasExtra bool     `json:"has_extra"`
	Extra    Features `json:"extra,omitempty"`
	// FundingSats is the leading BigSize of Extra, read by clients since LDK
	// 0.2 as the channel capacity.
	FundingSats  uint64 `json:"funding_sats"`
	FundingKnown bool   `json:"funding_known"`
}

// UpdateEntry is one channel update entry.
type UpdateEntry struct {
	SCID      uint64 `json:"scid"`
	SCIDDelta uint64 `json:"scid_delta"`
	// Flags is the raw flag byte.
	Flags uint8 `json:"flags"`
	// IsExtra marks a version 2 forward-compatibility slot (same SCID and
	// direction as the previous entry): ExtraData follows the flag byte and
	// the entry is not an update.
	IsExtra   bool     `json:"is_extra,omitempty"`
	ExtraData Features `json:"extra_data,omitempty"`
	Direction uint8    `json:"direction"`
	Disabled  bool     `json:"disabled"`
	// Kind is Full, Incremental, or Reminder (incremental without fields).
	Kind UpdateKind `json:"kind"`
	// Present lists the fields written in the entry.
	Present Field `json:"present"`
	// Values holds, for Full, the defaults overridden by the present fields;
	// for Incremental, the present fields (others zero).
	Values Policy `json:"values"`
}

// reader is a bounds-checked cursor over the input.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) short(what string, n int) error {
	return fmt.Errorf("%s: need %d bytes at offset %d, have %d: %w", what, n, r.off, r.remaining(), ErrShortRead)
}

func (r *reader) bytes(what string, n int) ([]byte, error) {
	if n < 0 || r.remaining() < n {
		return nil, r.short(what, n)
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v, nil
}

func (r *reader) u8(what string) (uint8, error) {
	if r.remaining() < 1 {
		return 0, r.short(what, 1)
	}
	v := r.b[r.off]
	r.off++
	return v, nil
}

func (r *reader) u16(what string) (uint16, error) {
	b, err := r.bytes(what, 2)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b), nil
}

func (r *reader) u32(what string) (uint32, error) {
	b, err := r.bytes(what, 4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

func (r *reader) u64(what string) (uint64, error) {
	b, err := r.bytes(what, 8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

// bigSize reads a BigSize and rejects non-minimal encodings.
func (r *reader) bigSize(what string) (uint64, error) {
	start := r.off
	p, err := r.u8(what)
	if err != nil {
		return 0, err
	}
	var v, min uint64
	switch p {
	case 0xfd:
		x, err := r.u16(what)
		if err != nil {
			return 0, err
		}
		v, min = uint64(x), 0xfd
	case 0xfe:
		x, err := r.u32(what)
		if err != nil {
			return 0, err
		}
		v, min = uint64(x), 0x10000
	case 0xff:
		x, err := r.u64(what)
		if err != nil {
			return 0, err
		}
		v, min = x, 0x100000000
	default:
		return uint64(p), nil
	}
	if v < min {
		return 0, fmt.Errorf("%s: non-minimal bigsize at offset %d: %w", what, start, ErrInvalidValue)
	}
	return v, nil
}

// features reads a u16-length-prefixed byte string.
func (r *reader) features(what string) ([]byte, error) {
	n, err := r.u16(what)
	if err != nil {
		return nil, err
	}
	return r.bytes(what, int(n))
}

// vector reads an LDK byte vector: u16 length, or 0xffff followed by a u64 of
// the length minus 0xffff.
func (r *reader) vector(what string) ([]byte, error) {
	n, err := r.u16(what)
	if err != nil {
		return nil, err
	}
	if n != 0xffff {
		return r.bytes(what, int(n))
	}
	x, err := r.u64(what)
	if err != nil {
		return nil, err
	}
	if x > uint64(r.remaining()) || x+0xffff > uint64(r.remaining()) {
		return nil, r.short(what, r.remaining()+1)
	}
	return r.bytes(what, int(x)+0xffff)
}

// Decode parses an RGS file of version 1 or 2. It rejects, with errors wrapping
// the package sentinels, everything an LDK client rejects on the bytes alone:
// bad magic or version, truncation, non-minimal BigSize, SCID overflow, node index
// out of range, invalid node keys, default feature markers past the list,
// addresses leaving bytes in their window, malformed funding amounts, node or
// update counts above the client caps, and channels announced with the same node
// twice. Checks that need context (chain, current time) or that only newer
// clients apply (node id order) are in File.Validate. The returned File aliases b.
func Decode(b []byte) (*File, error) {
	return DecodeOptions{}.Decode(b)
}

// DecodeOptions relaxes Decode. The zero value is Decode's strict behaviour.
type DecodeOptions struct {
	// SkipKeyCheck skips checking that node ids are valid secp256k1 points.
	// LDK 0.1 clients make this check (and reject the file); 0.2 and later
	// take the 33 bytes as they are. It is the bulk of decoding time (a
	// square root per node).
	SkipKeyCheck bool
}

// Decode parses b like the package-level Decode, with o's relaxations.
func (o DecodeOptions) Decode(b []byte) (*File, error) {
	r := &reader{b: b}
	magic, err := r.bytes("magic", 4)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(magic[:3], []byte("LDK")) {
		return nil, fmt.Errorf("magic %x: %w", magic[:3], ErrUnknownVersion)
	}
	f := &File{Version: int(magic[3]), Size: len(b)}
	if f.Version != Version1 && f.Version != Version2 {
		return nil, fmt.Errorf("version %d: %w", f.Version, ErrUnknownVersion)
	}
	h, err := r.bytes("chain hash", 32)
	if err != nil {
		return nil, err
	}
	copy(f.ChainHash[:], h)
	f.Chain = ChainName(f.ChainHash)
	if f.Timestamp, err = r.u32("timestamp"); err != nil {
		return nil, err
	}
	if f.Version == Version2 {
		n, err := r.u8("default node feature count")
		if err != nil {
			return nil, err
		}
		f.DefaultNodeFeatures = make([]Features, 0, min(int(n), r.remaining()/2))
		for i := range int(n) {
			v, err := r.features(fmt.Sprintf("default node features %d", i))
			if err != nil {
				return nil, err
			}
			f.DefaultNodeFeatures = append(f.DefaultNodeFeatures, v)
		}
	}
	if err := f.decodeNodes(r, !o.SkipKeyCheck); err != nil {
		return nil, err
	}
	if err := f.decodeAnnouncements(r); err != nil {
		return nil, err
	}
	if err := f.decodeUpdates(r); err != nil {
		return nil, err
	}
	f.Trailing = r.remaining()
	return f, nil
}

func (f *File) decodeNodes(r *reader, checkKeys bool) error {
	count, err := r.u32("node count")
	if err != nil {
		return err
	}
	if count > MaxNodeCount {
		return fmt.Errorf("node count %d: %w", count, ErrNonsenseCount)
	}
	if uint64(count)*33 > uint64(r.remaining()) {
		return r.short(fmt.Sprintf("%d node ids", count), int(count)*33)
	}
	f.Nodes = make([]NodeEntry, count)
	for i := range f.Nodes {
		n := &f.Nodes[i]
		start := r.off
		key, err := r.bytes("node id", 33)
		if err != nil {
			return err
		}
		copy(n.NodeID[:], key)
		if f.Version == Version2 {
			n.Flags = key[0]
			n.NodeID[0] = key[0] & 0x03
		}
		if n.NodeID[0] != 0x02 && n.NodeID[0] != 0x03 || checkKeys && !validKey(&n.NodeID) {
			return fmt.Errorf("node %d at offset %d: not a public key: %w", i, start, ErrInvalidValue)
		}
		if f.Version == Version1 {
			continue
		}
		if err := f.decodeNodeData(r, i, n); err != nil {
			return err
		}
	}
	return nil
}

func (f *File) decodeNodeData(r *reader, i int, n *NodeEntry) error {
	if n.Flags&0x04 != 0 {
		n.HasAddresses = true
		count, err := r.u8("address count")
		if err != nil {
			return err
		}
		n.Addresses = make([]Address, 0, min(int(count), r.remaining()))
		for range int(count) {
			l, err := r.u8("address length")
			if err != nil {
				return err
			}
			a, err := r.bytes("address", int(l))
			if err != nil {
				return err
			}
			addr := Address(a)
			if err := addr.check(); err != nil {
				return fmt.Errorf("node %d at offset %d: %w", i, r.off-int(l), err)
			}
			n.Addresses = append(n.Addresses, addr)
		}
	}
	n.FeatureMarker = (n.Flags >> 3) & 0x07
	switch m := n.FeatureMarker; {
	case m == 7:
		v, err := r.features("node features")
		if err != nil {
			return err
		}
		n.Features = v
	case m > 0:
		if int(m) > len(f.DefaultNodeFeatures) {
			return fmt.Errorf("node %d: feature marker %d with %d defaults: %w", i, m, len(f.DefaultNodeFeatures), ErrInvalidValue)
		}
		n.Features = f.DefaultNodeFeatures[m-1]
	}
	n.Reminder = n.Flags&0x40 != 0
	if n.Flags&0x80 != 0 {
		v, err := r.vector("node extra data")
		if err != nil {
			return err
		}
		n.Extra = v
	}
	return nil
}

func (f *File) decodeAnnouncements(r *reader) error {
	count, err := r.u32("announcement count")
	if err != nil {
		return err
	}
	// An entry takes at least 5 bytes.
	f.Announcements = make([]AnnouncementEntry, 0, min(int(count), r.remaining()/5))
	var prev uint64
	for i := range int(count) {
		var a AnnouncementEntry
		start := r.off
		if a.Features, err = r.features("channel features"); err != nil {
			return err
		}
		if a.SCIDDelta, err = r.bigSize("scid delta"); err != nil {
			return err
		}
		a.SCID = prev + a.SCIDDelta
		if a.SCID < prev {
			return fmt.Errorf("announcement %d at offset %d: scid overflow: %w", i, start, ErrInvalidValue)
		}
		prev = a.SCID
		if a.Node1Index, err = r.bigSize("node_1 index"); err != nil {
			return err
		}
		n2, err := r.bigSize("node_2 index")
		if err != nil {
			return err
		}
		a.HasExtra = n2&(1<<63) != 0
		a.Node2Index = n2 &^ (1 << 63)
		if a.Node1Index >= uint64(len(f.Nodes)) || a.Node2Index >= uint64(len(f.Nodes)) {
			return fmt.Errorf("announcement %d at offset %d: node index %d/%d of %d: %w",
				i, start, a.Node1Index, a.Node2Index, len(f.Nodes), ErrInvalidValue)
		}
		a.NodeID1 = f.Nodes[a.Node1Index].NodeID
		a.NodeID2 = f.Nodes[a.Node2Index].NodeID
		if f.Version == Version2 && a.HasExtra {
			if a.Extra, err = r.vector("announcement extra data"); err != nil {
				return err
			}
			er := &reader{b: a.Extra}
			if a.FundingSats, err = er.bigSize("funding amount"); err != nil {
				return fmt.Errorf("announcement %d at offset %d: %w", i, start, err)
			}
			a.FundingKnown = true
		}
		if a.NodeID1 == a.NodeID2 {
			return fmt.Errorf("announcement %d scid %d: %w", i, a.SCID, ErrSameNode)
		}
		f.Announcements = append(f.Announcements, a)
	}
	return nil
}

func (f *File) decodeUpdates(r *reader) error {
	count, err := r.u32("update count")
	if err != nil {
		return err
	}
	if count > MaxUpdateCount {
		return fmt.Errorf("update count %d: %w", count, ErrNonsenseCount)
	}
	if count == 0 {
		return nil
	}
	var d Policy
	if d.CLTVExpiryDelta, err = r.u16("default cltv_expiry_delta"); err != nil {
		return err
	}
	if d.HTLCMinimumMsat, err = r.u64("default htlc_minimum_msat"); err != nil {
		return err
	}
	if d.FeeBaseMsat, err = r.u32("default fee_base_msat"); err != nil {
		return err
	}
	if d.FeeProportionalMillionths, err = r.u32("default fee_proportional_millionths"); err != nil {
		return err
	}
	if d.HTLCMaximumMsat, err = r.u64("default htlc_maximum_msat"); err != nil {
		return err
	}
	f.Defaults = &d
	// An entry takes at least 2 bytes.
	f.Updates = make([]UpdateEntry, 0, min(int(count), r.remaining()/2))
	var prev uint64
	prevDir := -1
	for i := range int(count) {
		var u UpdateEntry
		start := r.off
		if u.SCIDDelta, err = r.bigSize("update scid delta"); err != nil {
			return err
		}
		u.SCID = prev + u.SCIDDelta
		if u.SCID < prev {
			return fmt.Errorf("update %d at offset %d: scid overflow: %w", i, start, ErrInvalidValue)
		}
		prev = u.SCID
		if u.Flags, err = r.u8("update flags"); err != nil {
			return err
		}
		u.Direction = u.Flags & 0x01
		u.Disabled = u.Flags&0x02 != 0
		if f.Version == Version2 && u.SCIDDelta == 0 && int(u.Direction) == prevDir {
			u.IsExtra = true
			if u.ExtraData, err = r.vector("update extra data"); err != nil {
				return err
			}
			f.Updates = append(f.Updates, u)
			continue
		}
		prevDir = int(u.Direction)
		u.Present = Field(u.Flags) & AllFields
		if u.Flags&0x80 == 0 {
			u.Kind = Full
			u.Values = d
		} else if u.Present == 0 {
			u.Kind = Reminder
		} else {
			u.Kind = Incremental
		}
		if err := readPolicy(r, &u.Values, u.Present); err != nil {
			return err
		}
		f.Updates = append(f.Updates, u)
	}
	return nil
}

func readPolicy(r *reader, p *Policy, fields Field) error {
	var err error
	if fields&FieldCLTVExpiryDelta != 0 {
		if p.CLTVExpiryDelta, err = r.u16("cltv_expiry_delta"); err != nil {
			return err
		}
	}
	if fields&FieldHTLCMinimumMsat != 0 {
		if p.HTLCMinimumMsat, err = r.u64("htlc_minimum_msat"); err != nil {
			return err
		}
	}
	if fields&FieldFeeBaseMsat != 0 {
		if p.FeeBaseMsat, err = r.u32("fee_base_msat"); err != nil {
			return err
		}
	}
	if fields&FieldFeeProportionalMillionths != 0 {
		if p.FeeProportionalMillionths, err = r.u32("fee_proportional_millionths"); err != nil {
			return err
		}
	}
	if fields&FieldHTLCMaximumMsat != 0 {
		if p.HTLCMaximumMsat, err = r.u64("htlc_maximum_msat"); err != nil {
			return err
		}
	}
	return nil
}

// Validate applies the checks that need context or that only current clients
// make: the chain hash (skipped when chain is nil), staleness against now (unix
// seconds; 0 skips it), and node_id_1 < node_id_2 for every announcement.
func (f *File) Validate(chain *[32]byte, now uint64) error {
	if chain != nil && *chain != [32]byte(f.ChainHash) {
		return fmt.Errorf("file chain %x: %w", f.ChainHash[:], ErrChainHash)
	}
	if now != 0 && uint64(f.Timestamp)+14*24*3600 < now {
		return fmt.Errorf("timestamp %d, now %d: %w", f.Timestamp, now, ErrStale)
	}
	for i := range f.Announcements {
		a := &f.Announcements[i]
		if bytes.Compare(a.NodeID1[:], a.NodeID2[:]) >= 0 {
			return fmt.Errorf("announcement scid %d: %w", a.SCID, ErrNodeOrder)
		}
	}
	return nil
}

// Delta returns the semantic content of f: announcements with node ids and
// funding, updates with resolved values (forward-compatibility slots dropped),
// and in version 2 the node entries that carry node data, sorted by node id
// (entries for the same node keep their table order).
// Announcements and updates keep the file's order.
func (f *File) Delta() *Delta {
	d := &Delta{ChainHash: f.ChainHash, Timestamp: f.Timestamp}
	d.Announcements = make([]Announcement, len(f.Announcements))
	for i := range f.Announcements {
		a := &f.Announcements[i]
		d.Announcements[i] = Announcement{
			SCID:         a.SCID,
			Features:     a.Features,
			NodeID1:      a.NodeID1,
			NodeID2:      a.NodeID2,
			FundingSats:  a.FundingSats,
			FundingKnown: a.FundingKnown,
		}
	}
	d.Updates = make([]Update, 0, len(f.Updates))
	for i := range f.Updates {
		u := &f.Updates[i]
		if u.IsExtra {
			continue
		}
		du := Update{SCID: u.SCID, Direction: u.Direction, Disabled: u.Disabled, Kind: u.Kind}
		switch u.Kind {
		case Full:
			du.Policy = u.Values
		case Incremental:
			du.Policy = u.Values
			du.Changed = u.Present
		}
		d.Updates = append(d.Updates, du)
	}
	for i := range f.Nodes {
		n := &f.Nodes[i]
		if !n.hasData() {
			continue
		}
		d.Nodes = append(d.Nodes, NodeDelta{
			NodeID:       n.NodeID,
			HasAddresses: n.HasAddresses,
			Addresses:    n.Addresses,
			HasFeatures:  n.FeatureMarker != 0,
			Features:     n.Features,
			Reminder:     n.Reminder,
		})
	}
	slices.SortStableFunc(d.Nodes, func(a, b NodeDelta) int { return bytes.Compare(a.NodeID[:], b.NodeID[:]) })
	return d
}

// Summary returns a one-line description of f.
func (f *File) Summary() string {
	chain := f.Chain
	if chain == "" {
		chain = hex.EncodeToString(f.ChainHash[:])
	}
	full, incr, rem := 0, 0, 0
	for i := range f.Updates {
		switch u := &f.Updates[i]; {
		case u.IsExtra:
		case u.Kind == Full:
			full++
		case u.Kind == Incremental:
			incr++
		default:
			rem++
		}
	}
	withData := 0
	for i := range f.Nodes {
		if f.Nodes[i].hasData() {
			withData++
		}
	}
	return fmt.Sprintf("rgs v%d %s timestamp %d (%s): %d nodes (%d with data), %d announcements, %d updates (%d full, %d incremental, %d reminders), %d bytes, %d trailing",
		f.Version, chain, f.Timestamp, time.Unix(int64(f.Timestamp), 0).UTC().Format(time.RFC3339), len(f.Nodes), withData, len(f.Announcements),
		len(f.Updates), full, incr, rem, f.Size, f.Trailing)
}

// FormatSCID writes a short channel id in BOLT 7's human form,
// block x transaction index x output index (e.g. "800000x1234x1").
func FormatSCID(scid uint64) string {
	return fmt.Sprintf("%dx%dx%d", scid>>40, scid>>16&0xffffff, scid&0xffff)
}

// MarshalJSON adds the short channel id in its human form.
func (a AnnouncementEntry) MarshalJSON() ([]byte, error) {
	type plain AnnouncementEntry
	return json.Marshal(struct {
		plain
		ShortChannelID string `json:"short_channel_id"`
	}{plain(a), FormatSCID(a.SCID)})
}

// MarshalJSON adds the short channel id in its human form.
func (u UpdateEntry) MarshalJSON() ([]byte, error) {
	type plain UpdateEntry
	return json.Marshal(struct {
		plain
		ShortChannelID string `json:"short_channel_id"`
	}{plain(u), FormatSCID(u.SCID)})
}
