package gsp

import (
	"encoding/binary"
	"errors"
	"time"
)

// Wire types that the reader knows how to check for plausibility.
const (
	// TypeChannelAnnouncement is BOLT 7 channel_announcement.
	TypeChannelAnnouncement uint16 = 256
	// TypeNodeAnnouncement is BOLT 7 node_announcement.
	TypeNodeAnnouncement uint16 = 257
	// TypeChannelUpdate is BOLT 7 channel_update.
	TypeChannelUpdate uint16 = 258

	// TypeReceiveTime is the odd custom wire type of the receive-time
	// extension record (see the package documentation).
	TypeReceiveTime uint16 = 0xFFFD
)

// MaxMessageSize is the largest wire message (type included) a record may
// hold: BOLT 1 limits a Lightning message to 65535 bytes.
const MaxMessageSize = 65535

// receiveTimeLen is the wire length of a receive-time record: type + u64.
const receiveTimeLen = 2 + 8

// Header is the four-byte preamble of every GSP v1 file.
var Header = [4]byte{'G', 'S', 'P', 0x01}

var (
	// ErrBadHeader means the stream does not start with Header.
	ErrBadHeader = errors.New("gsp: not a GSP v1 stream")
	// ErrFraming means a record's length or content is impossible; a
	// strict Reader stops there, a resynchronising one skips it.
	ErrFraming = errors.New("gsp: bad record framing")
)

// Record is one wire message read from a GSP stream.
type Record struct {
	// Type is the message's 2-byte wire type, e.g. TypeChannelUpdate.
	Type uint16
	// Msg holds the full wire message, type included. The Reader
	// allocates it afresh for each record; callers may keep it.
	Msg []byte
	// ReceivedAt is the receive time carried by the last preceding
	// receive-time record, in UTC with microsecond precision; the zero
	// time when the stream carries none.
	ReceivedAt time.Time
}

// putBigSize appends v as a BOLT BigSize (big-endian, minimal encoding).
func putBigSize(b []byte, v uint64) []byte {
	switch {
	case v < 0xFD:
		return append(b, byte(v))
	case v <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 0xFD), uint16(v))
	case v <= 0xFFFFFFFF:
		return binary.BigEndian.AppendUint32(append(b, 0xFE), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xFF), v)
	}
}

// bigSize decodes a BigSize at the start of b. It returns the value, the
// number of bytes used and whether b held a complete, minimally encoded
// value.
func bigSize(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] {
	case 0xFD:
		if len(b) < 3 {
			return 0, 0, false
		}
		v = uint64(binary.BigEndian.Uint16(b[1:]))
		return v, 3, v >= 0xFD
	case 0xFE:
		if len(b) < 5 {
			return 0, 0, false
		}
		v = uint64(binary.BigEndian.Uint32(b[1:]))
		return v, 5, v > 0xFFFF
	case 0xFF:
		if len(b) < 9 {
			return 0, 0, false
		}
		v = binary.BigEndian.Uint64(b[1:])
		return v, 9, v > 0xFFFFFFFF
	default:
		return uint64(b[0]), 1, true
	}
}

// minLen returns the smallest wire length a message of type t can have and
// whether t is a type this package checks. Sizes follow BOLT 7 with empty
// variable-length fields.
func minLen(t uint16) (int, bool) {
	switch t {
	case TypeChannelAnnouncement:
		return 432, true
	case TypeNodeAnnouncement:
		return 142, true
	case TypeChannelUpdate:
		return 130, true // before htlc_maximum_msat became mandatory
	case TypeReceiveTime:
		return receiveTimeLen, true
	}
	return 0, false
}

// exactLen returns the length that msg's fixed structure implies when the
// message carries no trailing extension data, or -1 when msg is too short
// to tell or its type is unknown. For channel_update it returns the length
// without TLV extensions.
func exactLen(msg []byte) int {
	if len(msg) < 2 {
		return -1
	}
	switch binary.BigEndian.Uint16(msg) {
	case TypeChannelAnnouncement:
		if len(msg) < 260 {
			return -1
		}
		return 432 + int(binary.BigEndian.Uint16(msg[258:]))
	case TypeNodeAnnouncement:
		if len(msg) < 68 {
			return -1
		}
		f := int(binary.BigEndian.Uint16(msg[66:]))
		if len(msg) < 142+f {
			return -1
		}
		return 142 + f + int(binary.BigEndian.Uint16(msg[140+f:]))
	case TypeChannelUpdate:
		if len(msg) < 111 {
			return -1
		}
		if msg[110]&1 == 0 { // message_flags: no htlc_maximum_msat
			return 130
		}
		return 138
	case TypeReceiveTime:
		return receiveTimeLen
	}
	return -1
}

// plausibleMessage reports whether msg, taken as a whole wire message, has
// a known type and a length its structure allows.
func plausibleMessage(msg []byte) bool {
	if len(msg) < 2 {
		return false
	}
	t := binary.BigEndian.Uint16(msg)
	lo, known := minLen(t)
	if !known || len(msg) < lo {
		return false
	}
	want := exactLen(msg)
	if t == TypeReceiveTime {
		return len(msg) == want
	}
	return want >= 0 && len(msg) >= want
}
