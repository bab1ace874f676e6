package sketch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// ErrDecodeFailed reports that a sketch could not be decoded: it holds more
// elements than the decode limit (or than its capacity), or its contents are
// not the sketch of any set that small.
var ErrDecodeFailed = errors.New("sketch: decode failed")

// Sketch is a PinSketch over GF(2^bits) with a fixed capacity: the odd power
// sums s₁, s₃, …, s_(2·capacity−1) of a set of nonzero bits-bit elements,
// where s_j is the sum in GF(2^bits) of every element raised to the j-th
// power. A set of at most capacity elements can be recovered from its sketch,
// and adding two sketches gives the sketch of the symmetric difference.
//
// The zero Sketch is not usable; create one with New. A Sketch is not safe for
// concurrent use; Decode, Serialize and the accessors only read it and may run
// concurrently with each other.
type Sketch struct {
	f    field
	syn  []uint64
	seed uint64
	// tab is Add's scratch space for large capacities, allocated on first
	// use and never shared between sketches.
	tab *mulTable
}

// New returns an empty sketch of bits-bit elements (MinBits ≤ bits ≤ MaxBits)
// that can decode up to capacity (≥ 1) elements. It serializes to
// ⌈bits·capacity/8⌉ bytes.
//
// The root finder in Decode is randomised, as in libminisketch, so that
// crafted inputs cannot force its worst case; the seed is drawn at random and
// can be fixed with SetSeed. Decoded results never depend on it.
func New(bits, capacity int) (*Sketch, error) {
	if bits < MinBits || bits > MaxBits {
		return nil, fmt.Errorf("sketch: bits %d out of range [%d, %d]", bits, MinBits, MaxBits)
	}
	if capacity < 1 {
		return nil, fmt.Errorf("sketch: capacity %d is below 1", capacity)
	}
	return &Sketch{f: newField(bits), syn: make([]uint64, capacity), seed: rand.Uint64()}, nil
}

// Bits returns the element size in bits.
func (s *Sketch) Bits() int { return s.f.bits }

// Capacity returns how many elements the sketch can decode; Merge may lower
// it.
func (s *Sketch) Capacity() int { return len(s.syn) }

// SetSeed fixes the seed of the randomised root finder used by Decode, for
// reproducible decoding times. Results do not depend on the seed.
func (s *Sketch) SetSeed(seed uint64) { s.seed = seed }

// Clone returns an independent copy of s.
func (s *Sketch) Clone() *Sketch {
	return &Sketch{f: s.f, syn: slices.Clone(s.syn), seed: s.seed}
}

// Add adds x to the set, or removes it if it is already there: sketches have
// set semantics, so adding an element twice cancels it. As in libminisketch,
// only the low Bits() bits of x are used (x is taken modulo 2^Bits()), and an
// element that is 0 after this truncation is ignored, since 0 cannot be
// represented in a sketch. Callers that need every value of a wider ID space
// should map IDs into [1, 2^Bits()−1] first, for example 1 + id mod (2^Bits()−1).
//
// Add costs Capacity() field multiplications.
func (s *Sketch) Add(x uint64) {
	x &= s.f.mask
	if x == 0 {
		return
	}
	if len(s.syn) >= addTableMin && s.tab == nil {
		s.tab = new(mulTable)
	}
	addElement(&s.f, s.syn, x, s.tab)
}

// Merge adds other into s, so that s becomes the sketch of the symmetric
// difference of the two sets. Both must have the same element size. As in
// libminisketch, if other has a smaller capacity, s is truncated to that
// capacity (a sketch of capacity c is a prefix of the sketch of the same set
// with a larger capacity). other is not modified.
func (s *Sketch) Merge(other *Sketch) error {
	if s.f.bits != other.f.bits {
		return fmt.Errorf("sketch: merge %d-bit sketch into %d-bit sketch", other.f.bits, s.f.bits)
	}
	if len(other.syn) < len(s.syn) {
		s.syn = s.syn[:len(other.syn)]
	}
	for i := range s.syn {
		s.syn[i] ^= other.syn[i]
	}
	return nil
}

// SerializedSize returns the length of Serialize's output:
// ⌈Bits()·Capacity()/8⌉ bytes.
func (s *Sketch) SerializedSize() int {
	return (s.f.bits*len(s.syn) + 7) / 8
}

// Serialize returns the sketch in libminisketch's format: the power sums
// s₁, s₃, … in order, each as Bits() bits (bit i is the coefficient of x^i in
// the field's polynomial basis), packed least significant bit first into a
// little-endian bit stream; unused bits of the last byte are zero. For 32-bit
// elements this is the BIP-330 sketch encoding (one little-endian uint32 per
// power sum). XOR of two serializations of equal size is the serialization of
// the merged sketch.
func (s *Sketch) Serialize() []byte {
	b, _ := s.AppendBinary(make([]byte, 0, s.SerializedSize()))
	return b
}

// AppendBinary appends the serialization of s (see Serialize) to b. It never
// returns an error; the signature matches encoding.BinaryAppender.
func (s *Sketch) AppendBinary(b []byte) ([]byte, error) {
	b = slices.Grow(b, s.SerializedSize())
	w := uint(s.f.bits)
	switch {
	case w == 64:
		out := b[len(b) : len(b)+8*len(s.syn)]
		for i, v := range s.syn {
			binary.LittleEndian.PutUint64(out[8*i:], v)
		}
		return b[:len(b)+len(out)], nil
	case w == 32:
		out := b[len(b) : len(b)+4*len(s.syn)]
		for i, v := range s.syn {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
		}
		return b[:len(b)+len(out)], nil
	case w%8 == 0:
		// Byte-aligned: each power sum is w/8 little-endian bytes.
		for _, v := range s.syn {
			for k := uint(0); k < w; k += 8 {
				b = append(b, byte(v>>k))
			}
		}
		return b, nil
	}
	var acc uint64 // pending bits, least significant first
	n := uint(0)   // how many bits of acc are pending (< 8 between elements)
	for _, v := range s.syn {
		// Emit v in two halves so that acc never needs more than 64 bits.
		lw := min(w, 32)
		acc |= (v & 0xffffffff) << n
		n += lw
		for n >= 8 {
			b = append(b, byte(acc))
			acc >>= 8
			n -= 8
		}
		if w > 32 {
			acc |= (v >> 32) << n
			n += w - 32
			for n >= 8 {
				b = append(b, byte(acc))
				acc >>= 8
				n -= 8
			}
		}
	}
	if n > 0 {
		b = append(b, byte(acc))
	}
	return b, nil
}

// Deserialize replaces the contents of s with a serialization produced by
// Serialize or by libminisketch for a sketch of the same element size and
// capacity; data must be exactly SerializedSize() bytes long. As in
// libminisketch, the unused bits of the last byte are ignored, and every
// input of the right length is accepted: arbitrary bytes form a valid (if
// probably undecodable) sketch.
func (s *Sketch) Deserialize(data []byte) error {
	if len(data) != s.SerializedSize() {
		return fmt.Errorf("sketch: deserialize %d bytes, want %d for %d-bit capacity-%d sketch",
			len(data), s.SerializedSize(), s.f.bits, len(s.syn))
	}
	w := uint(s.f.bits)
	switch {
	case w == 64:
		for i := range s.syn {
			s.syn[i] = binary.LittleEndian.Uint64(data[8*i:])
		}
		return nil
	case w == 32:
		for i := range s.syn {
			s.syn[i] = uint64(binary.LittleEndian.Uint32(data[4*i:]))
		}
		return nil
	case w%8 == 0:
		for i := range s.syn {
			var v uint64
			for k := uint(0); k < w; k += 8 {
				v |= uint64(data[0]) << k
				data = data[1:]
			}
			s.syn[i] = v
		}
		return nil
	}
	var acc uint64 // unread bits, least significant first
	n := uint(0)   // how many bits of acc are unread
	for i := range s.syn {
		var v uint64
		got := uint(0)
		for got < w {
			if n == 0 {
				// Load as many whole bytes as fit.
				for n <= 56 && len(data) > 0 {
					acc |= uint64(data[0]) << n
					data = data[1:]
					n += 8
				}
			}
			take := min(n, w-got)
			v |= (acc & (1<<take - 1)) << got
			acc >>= take
			n -= take
			got += take
		}
		s.syn[i] = v
	}
	return nil
}

// Decode returns the elements of the set the sketch represents, in ascending
// order, if it holds at most min(maxElements, Capacity()) of them. Otherwise
// it returns ErrDecodeFailed, except with a small probability: a sketch of
// more elements than its capacity (or random bytes) can look like the sketch
// of a smaller, different set. ComputeCapacity sizes a sketch so that this
// happens with probability at most 2^−fpbits when decoding up to a given
// number of elements.
//
// Decoding recovers the even power sums (s_2i = s_i²), finds the error
// locator polynomial with Berlekamp–Massey, finds its roots with the
// Berlekamp trace algorithm, and accepts the result only if the locator
// splits into distinct nonzero roots and the roots re-create the sketch
// exactly. Its cost is O(Capacity()²) field operations for Berlekamp–Massey
// and O(Bits()·n²) for the n roots. Decode does not modify s.
//
// libminisketch allows a maxElements above the capacity; such a decode is not
// unique, so here maxElements is capped at Capacity().
func (s *Sketch) Decode(maxElements int) ([]uint64, error) {
	if maxElements < 0 {
		return nil, fmt.Errorf("sketch: decode with negative maxElements %d", maxElements)
	}
	maxElements = min(maxElements, len(s.syn))
	a := &arith{f: s.f}
	f := &a.f

	all := make([]uint64, 2*len(s.syn))
	for i, v := range s.syn {
		all[2*i] = v               // s_(2i+1)
		all[2*i+1] = f.sqr(all[i]) // s_(2i+2) = s_(i+1)²
	}
	loc, ok := a.berlekampMassey(all, maxElements)
	if !ok {
		return nil, ErrDecodeFailed
	}
	n := len(loc) - 1
	if n == 0 {
		return []uint64{}, nil
	}
	// loc(X) = Π(1 − e·X); its reverse Π(X − e) is monic and has the
	// elements themselves as roots. A zero constant term in the reverse
	// would mean a root 0, which no set can contain.
	if loc[n] == 0 {
		return nil, ErrDecodeFailed
	}
	slices.Reverse(loc)
	roots, ok := a.findRoots(make([]uint64, 0, n), loc, s.basis(), 0, false)
	if !ok || len(roots) != n {
		return nil, ErrDecodeFailed
	}
	// The roots are distinct and nonzero; check that they are the set that
	// produced the sketch.
	check := make([]uint64, len(s.syn))
	for _, e := range roots {
		addElement(f, check, e, &a.tab)
	}
	if !slices.Equal(check, s.syn) {
		return nil, ErrDecodeFailed
	}
	slices.Sort(roots)
	return roots, nil
}

// basis returns the nonzero field element that starts the root finder's
// sequence of trace splits, derived from the seed.
func (s *Sketch) basis() uint64 {
	z := s.seed + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	if z &= s.f.mask; z == 0 {
		z = 1
	}
	return z
}
