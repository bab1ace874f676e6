package rgs

import "encoding/binary"

// appendBigSize appends v as a minimal BOLT 1 BigSize.
func appendBigSize(b []byte, v uint64) []byte {
	switch {
	case v < 0xfd:
		return append(b, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xfd), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, 0xfe), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xff), v)
	}
}

// bigSizeLen returns the encoded length of v.
func bigSizeLen(v uint64) int {
	switch {
	case v < 0xfd:
		return 1
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	default:
		return 9
	}
}
