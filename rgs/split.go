package rgs

import "slices"

// SplitAddresses splits a node_announcement's address field (the
// concatenated descriptors, without the u16 length) into descriptors, in the
// announced order, dropping exact duplicates. Parsing stops at a descriptor of
// unknown type or one cut short, since BOLT 7 gives no way to find where it
// ends; the descriptors before it are kept.
func SplitAddresses(b []byte) []Address {
	out := []Address{}
	for len(b) > 0 {
		n, ok := descriptorLen(b)
		if !ok {
			break
		}
		a := Address(b[:n:n])
		dup := false
		for _, seen := range out {
			if string(seen) == string(a) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
		b = b[n:]
	}
	return out
}

// MaxAddresses is the most addresses a version 2 node entry can carry, and
// MaxAddressLen the longest descriptor (type byte included): both counts
// are one byte in the format.
const (
	MaxAddresses  = 255
	MaxAddressLen = 255
)

// FitAddresses returns the addresses of list that a version 2 node entry can
// carry, in order: descriptors longer than MaxAddressLen (a DNS hostname of
// more than 251 bytes) are dropped, and of the rest the first MaxAddresses
// are kept, as the reference server does. It reports how many it dropped for
// each reason. list is not modified; the result shares its elements.
func FitAddresses(list []Address) (kept []Address, tooLong, beyondMax int) {
	kept = list
	tooLongAddr := func(a Address) bool { return len(a) > MaxAddressLen }
	if slices.ContainsFunc(list, tooLongAddr) {
		kept = slices.DeleteFunc(slices.Clone(list), tooLongAddr)
		tooLong = len(list) - len(kept)
	}
	if len(kept) > MaxAddresses {
		beyondMax = len(kept) - MaxAddresses
		kept = kept[:MaxAddresses:MaxAddresses]
	}
	return kept, tooLong, beyondMax
}

// descriptorLen returns the length of the descriptor at the start of b, type
// byte included, when its type is known and it is complete.
func descriptorLen(b []byte) (int, bool) {
	var n int
	switch b[0] {
	case AddrIPv4:
		n = 1 + 6
	case AddrIPv6:
		n = 1 + 18
	case AddrTorV2:
		n = 1 + 12
	case AddrTorV3:
		n = 1 + 37
	case AddrHostname:
		if len(b) < 2 {
			return 0, false
		}
		n = 1 + 1 + int(b[1]) + 2
	default:
		return 0, false
	}
	return n, len(b) >= n
}

// Diff returns the fields whose values differ between p and q.
func (p Policy) Diff(q Policy) Field { return p.fieldsDiffering(q) }
