package rgs

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
)

// Format versions understood by this package.
const (
	// Version1 is the original format: node ids, announcements, updates.
	Version1 = 1
	// Version2 adds node data (addresses, features, reminders) and channel
	// funding amounts.
	Version2 = 2
)

// Client limits: a file announcing more nodes or updates than this is rejected by
// current LDK clients as nonsense.
const (
	// MaxNodeCount is the largest node table a client accepts.
	MaxNodeCount = 200_000
	// MaxUpdateCount is the largest update count a client accepts.
	MaxUpdateCount = 600_000
)

// NodeID is a 33-byte compressed secp256k1 public key. A [33]byte value is
// assignable to it. It marshals as lowercase hex.
type NodeID [33]byte

// String returns the key as lowercase hex.
func (n NodeID) String() string { return hex.EncodeToString(n[:]) }

// MarshalText encodes the key as lowercase hex.
func (n NodeID) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText parses a 66-character hex key.
func (n *NodeID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(n) {
		return fmt.Errorf("node id: %d hex chars: %w", len(b), ErrInvalidValue)
	}
	_, err := hex.Decode(n[:], b)
	return err
}

// Features is a BOLT 9 feature bit field in wire order (big-endian, leading zero
// bytes kept as given). A []byte is assignable to it. It marshals as hex.
type Features []byte

// MarshalText encodes the features as lowercase hex.
func (f Features) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(f)), nil
}

// UnmarshalText parses hex.
func (f *Features) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	*f = v
	return err
}

// UpdateKind says how a channel update is expressed in a file.
type UpdateKind uint8

const (
	// Full carries every value, relative to the file's defaults.
	Full UpdateKind = iota
	// Incremental carries only the fields in Update.Changed; the client keeps
	// its current values for the others. It needs the direction to be known.
	Incremental
	// Reminder carries no values: it refreshes the timestamp of what the client
	// has (and sets the disabled bit). On the wire it is an Incremental with no
	// changed field.
	Reminder
)

// String names the kind.
func (k UpdateKind) String() string {
	switch k {
	case Full:
		return "full"
	case Incremental:
		return "incremental"
	case Reminder:
		return "reminder"
	}
	return fmt.Sprintf("UpdateKind(%d)", uint8(k))
}

// MarshalText encodes the kind's name.
func (k UpdateKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Field is a bit set of channel update fields. The bit values are those of the
// update flag byte.
type Field uint8

// Update fields, with their flag-byte bits.
const (
	FieldCLTVExpiryDelta           Field = 0x40
	FieldHTLCMinimumMsat           Field = 0x20
	FieldFeeBaseMsat               Field = 0x10
	FieldFeeProportionalMillionths Field = 0x08
	FieldHTLCMaximumMsat           Field = 0x04
	// AllFields is the set of every update field.
	AllFields Field = 0x7c
)

// Policy holds the routing values of one channel direction.
type Policy struct {
	CLTVExpiryDelta           uint16 `json:"cltv_expiry_delta"`
	HTLCMinimumMsat           uint64 `json:"htlc_minimum_msat"`
	FeeBaseMsat               uint32 `json:"fee_base_msat"`
	FeeProportionalMillionths uint32 `json:"fee_proportional_millionths"`
	HTLCMaximumMsat           uint64 `json:"htlc_maximum_msat"`
}

// fieldsDiffering returns the fields of p that differ from q.
func (p Policy) fieldsDiffering(q Policy) Field {
	var f Field
	if p.CLTVExpiryDelta != q.CLTVExpiryDelta {
		f |= FieldCLTVExpiryDelta
	}
	if p.HTLCMinimumMsat != q.HTLCMinimumMsat {
		f |= FieldHTLCMinimumMsat
	}
	if p.FeeBaseMsat != q.FeeBaseMsat {
		f |= FieldFeeBaseMsat
	}
	if p.FeeProportionalMillionths != q.FeeProportionalMillionths {
		f |= FieldFeeProportionalMillionths
	}
	if p.HTLCMaximumMsat != q.HTLCMaximumMsat {
		f |= FieldHTLCMaximumMsat
	}
	return f
}

// Announcement is a channel to add to the client's graph.
type Announcement struct {
	SCID     uint64   `json:"scid"`
	Features Features `json:"features"`
	// NodeID1 must be strictly below NodeID2 (byte-wise), as in the signed
	// BOLT 7 announcement.
	NodeID1 NodeID `json:"node_id_1"`
	NodeID2 NodeID `json:"node_id_2"`
	// FundingSats is the channel capacity; written in version 2 only when
	// FundingKnown is set.
	FundingSats  uint64 `json:"funding_sats"`
	FundingKnown bool   `json:"funding_known"`
}

// Update is one channel direction's update.
type Update struct {
	SCID uint64 `json:"scid"`
	// Direction is 0 for the update by node_1 and 1 for node_2 (channel_flags
	// bit 0).
	Direction uint8 `json:"direction"`
	// Disabled is channel_flags bit 1; it is always authoritative, whatever
	// the kind.
	Disabled bool       `json:"disabled"`
	Kind     UpdateKind `json:"kind"`
	// Policy holds every value for Full, the values of Changed for
	// Incremental, and is ignored for Reminder.
	Policy Policy `json:"policy"`
	// Changed lists the fields present in an Incremental update. An
	// Incremental with no changed field is written exactly as a Reminder.
	Changed Field `json:"changed"`
}

// SetChannelFlags sets Direction and Disabled from a BOLT 7 channel_flags byte.
// Only bits 0 and 1 are used: the other bits have no meaning in RGS and copying
// them would corrupt the update's flag byte.
func (u *Update) SetChannelFlags(channelFlags uint8) {
	u.Direction = channelFlags & 0x01
	u.Disabled = channelFlags&0x02 != 0
}

// NodeDelta is version 2 node data for one node. Version 1 files carry none.
type NodeDelta struct {
	NodeID NodeID `json:"node_id"`
	// HasAddresses says Addresses replaces the client's address list; an
	// empty list removes every address.
	HasAddresses bool      `json:"has_addresses"`
	Addresses    []Address `json:"addresses"`
	// HasFeatures says Features replaces the client's node features.
	HasFeatures bool     `json:"has_features"`
	Features    Features `json:"features"`
	// Reminder refreshes the client's node announcement timestamp.
	Reminder bool `json:"reminder"`
}

// Delta is the semantic content of one RGS file. Encode requires Announcements
// sorted by SCID and Updates sorted by (SCID, Direction), each key at most once;
// Sort establishes that order. Nodes may be in any order, one entry per node.
type Delta struct {
	// ChainHash is the genesis block hash in internal byte order.
	ChainHash [32]byte `json:"chain_hash"`
	// Timestamp is the file's latest_seen: the client's next sync point and
	// the base (minus 7 days) of every timestamp it stores from this file.
	Timestamp     uint32         `json:"timestamp"`
	Announcements []Announcement `json:"announcements"`
	Updates       []Update       `json:"updates"`
	Nodes         []NodeDelta    `json:"nodes"`
}

// Sort orders Announcements by SCID, Updates by (SCID, Direction) and Nodes by
// NodeID, in place. It keeps duplicates; Encode rejects them.
func (d *Delta) Sort() {
	// The keys are unique in a delta (one announcement per channel, one
	// update per direction, one entry per node), so an unstable sort gives
	// the one order there is, faster.
	slices.SortFunc(d.Announcements, func(a, b Announcement) int {
		return cmp.Compare(a.SCID, b.SCID)
	})
	slices.SortFunc(d.Updates, func(a, b Update) int {
		if c := cmp.Compare(a.SCID, b.SCID); c != 0 {
			return c
		}
		return int(a.Direction) - int(b.Direction)
	})
	slices.SortFunc(d.Nodes, func(a, b NodeDelta) int {
		return bytes.Compare(a.NodeID[:], b.NodeID[:])
	})
}

// Mainnet and other chain hashes as written in an RGS header (genesis block hash,
// internal byte order).
var (
	ChainMainnet  = mustHash("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")
	ChainTestnet3 = mustHash("43497fd7f826957108f4a30fd9cec3aeba79972084e90ead01ea330900000000")
	ChainTestnet4 = mustHash("43f08bdab050e35b567c864b91f47f50ae725ae2de53bcfbbaf284da00000000")
	ChainSignet   = mustHash("f61eee3b63a380a477a063af32b2bbc97c9ff9f01f2c4225e973988108000000")
	ChainRegtest  = mustHash("06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f")
)

func mustHash(s string) [32]byte {
	var h [32]byte
	if n, err := hex.Decode(h[:], []byte(s)); err != nil || n != 32 {
		panic("rgs: bad chain hash constant " + s)
	}
	return h
}

// ChainName names a known chain hash ("mainnet", "testnet3", "testnet4",
// "signet", "regtest") or returns "".
func ChainName(h [32]byte) string {
	switch h {
	case ChainMainnet:
		return "mainnet"
	case ChainTestnet3:
		return "testnet3"
	case ChainTestnet4:
		return "testnet4"
	case ChainSignet:
		return "signet"
	case ChainRegtest:
		return "regtest"
	}
	return ""
}
