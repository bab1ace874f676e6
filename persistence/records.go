package persistence

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Record is one row for the Writer: a *ChannelAnnouncement, *ChannelUpdate,
// *NodeAnnouncement or *Receipt. The set is closed.
type Record interface{ record() }

// ChannelAnnouncement is a validated channel_announcement.
type ChannelAnnouncement struct {
	SCID        uint64
	NodeID1     [33]byte
	NodeID2     [33]byte
	Features    []byte
	FundingSats uint64 // meaningful only when FundingKnown
	// FundingKnown reports that the funding output was checked on chain. A later
	// copy with a known amount fills in an unknown one; nothing else of a stored
	// announcement changes.
	FundingKnown bool
	Signed       []byte    // complete wire message, type included
	ReceivedAt   time.Time // used as seen when the Writer keeps receive times
}

// ChannelUpdate is a validated channel_update. Direction is channel_flags bit 0.
type ChannelUpdate struct {
	SCID                      uint64
	Direction                 uint8
	Timestamp                 uint32
	MessageFlags              uint8
	ChannelFlags              uint8
	CLTVExpiryDelta           uint16
	HTLCMinimumMsat           uint64
	FeeBaseMsat               uint32
	FeeProportionalMillionths uint32
	HTLCMaximumMsat           uint64 // 0 when MessageFlags bit 0 is clear
	Signed                    []byte
	ReceivedAt                time.Time
}

// NodeAnnouncement is a validated node_announcement.
type NodeAnnouncement struct {
	NodeID     [33]byte
	Timestamp  uint32
	Features   []byte
	Addresses  []byte // the message's address descriptors, as signed
	Alias      [32]byte
	RGB        [3]byte
	Signed     []byte
	ReceivedAt time.Time
}

// Receipt records that a peer delivered a message. Only the first delivery
// of a message by a peer is recorded.
type Receipt struct {
	ReceivedAt time.Time // microsecond precision is kept
	PeerID     int32
	MsgHash    int64 // MessageHash of the wire message
	MsgType    uint16
	Size       int32 // wire bytes incl. type
}

func (*ChannelAnnouncement) record() {}
func (*ChannelUpdate) record()       {}
func (*NodeAnnouncement) record()    {}
func (*Receipt) record()             {}

// MessageHash identifies a wire message in receipts: the first 8 bytes of its
// SHA-256, read big-endian as a signed integer.
func MessageHash(msg []byte) int64 {
	sum := sha256.Sum256(msg)
	return int64(binary.BigEndian.Uint64(sum[:8]))
}
