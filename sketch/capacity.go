package sketch

import (
	"math"
	"math/bits"
)

// ComputeCapacity returns the capacity a sketch of bits-bit elements needs so
// that decoding it with Decode(maxElements) fails, rather than returning a
// wrong set, with probability at least 1 − 2^−fpbits whenever the sketch
// holds more than maxElements elements (or random bytes).
//
// It is libminisketch's minisketch_compute_capacity, bit for bit. A sketch of
// capacity c over GF(2^b) decodes wrongly with probability at most
// Σ_{k≤c} C(2^b−1, k) / 2^(b·c): the fraction of all sketches that are the
// sketch of some set of at most c elements. When that is already below
// 2^−fpbits the capacity is maxElements itself; otherwise each extra power
// sum adds b bits of protection, so the capacity grows by
// ⌈(fpbits − basefp)/b⌉. For example bits=32, maxElements=8, fpbits=16 gives 9.
// The result is exact for fpbits ≤ 256.
//
// It returns 0 if bits is outside [MinBits, MaxBits] or an argument is
// negative, and maxElements must be below 2^32.
func ComputeCapacity(bits, maxElements, fpbits int) int {
	if bits < MinBits || bits > MaxBits || maxElements < 0 || maxElements > math.MaxUint32 || fpbits < 0 {
		return 0
	}
	base := baseFPBits(uint32(bits), uint32(maxElements))
	if base >= uint64(fpbits) {
		return maxElements
	}
	return maxElements + int((uint64(fpbits)-base+uint64(bits)-1)/uint64(bits))
}

// ComputeMaxElements returns the largest number of elements that a sketch of
// bits-bit elements and the given capacity can be decoded for while keeping
// the probability of a wrong decode at most 2^−fpbits (see ComputeCapacity),
// or 0 if there is none. It is libminisketch's
// minisketch_compute_max_elements; it is not an exact inverse of
// ComputeCapacity (bits=32, capacity=9, fpbits=16 gives 9, though
// ComputeCapacity(32, 8, 16) is also 9).
//
// It returns 0 if bits is outside [MinBits, MaxBits] or an argument is
// negative, and capacity must be below 2^32.
func ComputeMaxElements(bits, capacity, fpbits int) int {
	if bits < MinBits || bits > MaxBits || capacity < 0 || capacity > math.MaxUint32 || fpbits < 0 {
		return 0
	}
	// Lower maxElements from capacity until it needs no more than capacity.
	// Lowering maxElements by k lowers the needed capacity by at most k.
	n := capacity
	for {
		need := ComputeCapacity(bits, n, fpbits)
		if need <= capacity {
			return n
		}
		over := need - capacity
		if n < over {
			return 0
		}
		n -= over
	}
}

// log2Table holds ⌊106·log2(1 + i/32)⌋ for i in [0, 32).
var log2Table = [32]uint32{
	0, 4, 9, 13, 18, 22, 26, 30, 34, 37, 41, 45, 48, 52, 55, 58, 62, 65, 68,
	71, 74, 77, 80, 82, 85, 88, 90, 93, 96, 98, 101, 103,
}

// log2Factorial returns ⌊log2(x!)⌋ for 1 ≤ x ≤ 57 and an underestimate of it
// above, as libminisketch computes it: a Stirling approximation over a
// fixed-point ⌊106·log2(x)⌋ taken from the top six bits of x.
func log2Factorial(x uint32) uint64 {
	n := uint32(bits.Len32(x))
	l2 := uint64(106*(n-1) + log2Table[((x<<(32-n))>>26)&31])
	var small uint64
	if x < 3 {
		small = 88632748
	}
	return (418079*(2*uint64(x)+1)*l2 - 127870026*uint64(x) + 117504694 + small) / 88632748
}

// Corrections to log2Factorial for small fields, from libminisketch: the exact
// base false-positive bits minus ⌊log2(c!)⌋, indexed from the first capacity
// where they are nonzero.
var (
	fpAdd5 = []uint8{1, 1, 1, 1, 2, 2, 2, 3, 4, 4, 5, 5, 6, 7, 8, 8, 9, 10, 10, 10, 11, 11, 11, 12, 12, 12, 12}
	fpAdd6 = []uint8{1, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 4, 5, 6, 6, 6, 7, 8, 8, 10, 10, 11, 12, 12, 13, 14, 15, 15, 16, 17, 18, 18, 19, 20, 20, 21, 21, 22, 22, 23, 23, 23, 24, 24, 24, 24}
	fpAdd7 = []uint8{1, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 7, 7, 8, 7, 8, 9, 9, 9, 10, 11, 11, 12, 12, 13, 13, 15, 15, 15, 16, 17, 17, 18, 19, 20, 20}
	fpAdd8 = []uint8{1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 3, 4, 4, 5, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 8, 9, 9}
	fpAdd9 = []uint8{1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 3, 2, 3, 3, 3, 3, 4, 3, 3, 4, 4, 4, 4}
)

// baseFPBits returns ⌊log2(2^(b·c) / Σ_{k=0..c} C(2^b−1, k))⌋ as libminisketch
// computes it (exact whenever the exact value is below 256): the protection
// against false positives that a sketch of capacity c has when decoded for up
// to c elements.
func baseFPBits(b, c uint32) uint64 {
	if c == 0 {
		return 0
	}
	var ret uint64
	if b < 32 && c >= 1<<b {
		// Sets cannot be larger than the 2^b−1 nonzero elements; every extra
		// power sum is pure protection.
		ret = uint64(b) * uint64(c-(1<<b)+1)
		c = 1<<b - 1
	}
	ret += log2Factorial(c)
	packed := func(table uint64, width, from uint32) uint64 {
		return table >> (width * (c - from)) & (1<<width - 1)
	}
	switch b {
	case 2:
		if c > 2 {
			ret++
		}
	case 3:
		if c > 2 {
			ret += packed(0x2a5, 2, 3)
		}
	case 4:
		if c > 3 {
			ret += packed(0xb6d91a449, 3, 4)
		}
	case 5:
		if c > 4 {
			ret += uint64(fpAdd5[c-5])
		}
	case 6:
		switch {
		case c > 54:
			ret += 25
		case c > 4:
			ret += uint64(fpAdd6[c-5])
		}
	case 7:
		switch {
		case c > 57:
			ret += 21
		case c > 4:
			ret += uint64(fpAdd7[c-5])
		}
	case 8:
		switch {
		case c > 56:
			ret += 10
		case c > 9:
			ret += uint64(fpAdd8[c-10])
		}
	case 9:
		switch {
		case c > 54:
			ret += 5
		case c > 11:
			ret += uint64(fpAdd9[c-12])
		}
	case 10:
		switch {
		case c > 50:
			ret += 2
		case c > 21:
			ret += packed(0x1a6665545555041, 2, 22)
		}
	case 11:
		switch {
		case c > 45:
			ret++
		case c > 21:
			ret += packed(0x5b3dc1, 1, 22)
		}
	case 12:
		if c > 21 && c <= 57 {
			ret += packed(0xe65522041, 1, 22)
		}
	case 13:
		if c > 27 && c <= 55 {
			ret += packed(0x8904081, 1, 28)
		}
	case 14:
		if c == 48 {
			ret++
		}
	}
	return ret
}
