package sketch

import "math/bits"

// MinBits and MaxBits bound the element size, in bits, of a Sketch.
const (
	MinBits = 2
	MaxBits = 64
)

// moduli holds, for every field size b in [MinBits, MaxBits], the irreducible
// polynomial that defines GF(2^b) with its leading x^b term removed: bit i is
// the coefficient of x^i. These are the lowest-weight irreducible polynomials
// (ties broken lexicographically) that libminisketch uses; they fix the
// meaning of every serialized sketch, so they must never change.
var moduli = [MaxBits + 1]uint64{
	2:  1<<1 | 1,
	3:  1<<1 | 1,
	4:  1<<1 | 1,
	5:  1<<2 | 1,
	6:  1<<1 | 1,
	7:  1<<1 | 1,
	8:  1<<4 | 1<<3 | 1<<1 | 1,
	9:  1<<1 | 1,
	10: 1<<3 | 1,
	11: 1<<2 | 1,
	12: 1<<3 | 1,
	13: 1<<4 | 1<<3 | 1<<1 | 1,
	14: 1<<5 | 1,
	15: 1<<1 | 1,
	16: 1<<5 | 1<<3 | 1<<1 | 1,
	17: 1<<3 | 1,
	18: 1<<3 | 1,
	19: 1<<5 | 1<<2 | 1<<1 | 1,
	20: 1<<3 | 1,
	21: 1<<2 | 1,
	22: 1<<1 | 1,
	23: 1<<5 | 1,
	24: 1<<4 | 1<<3 | 1<<1 | 1,
	25: 1<<3 | 1,
	26: 1<<4 | 1<<3 | 1<<1 | 1,
	27: 1<<5 | 1<<2 | 1<<1 | 1,
	28: 1<<1 | 1,
	29: 1<<2 | 1,
	30: 1<<1 | 1,
	31: 1<<3 | 1,
	32: 1<<7 | 1<<3 | 1<<2 | 1,
	33: 1<<10 | 1,
	34: 1<<7 | 1,
	35: 1<<2 | 1,
	36: 1<<9 | 1,
	37: 1<<6 | 1<<4 | 1<<1 | 1,
	38: 1<<6 | 1<<5 | 1<<1 | 1,
	39: 1<<4 | 1,
	40: 1<<5 | 1<<4 | 1<<3 | 1,
	41: 1<<3 | 1,
	42: 1<<7 | 1,
	43: 1<<6 | 1<<4 | 1<<3 | 1,
	44: 1<<5 | 1,
	45: 1<<4 | 1<<3 | 1<<1 | 1,
	46: 1<<1 | 1,
	47: 1<<5 | 1,
	48: 1<<5 | 1<<3 | 1<<2 | 1,
	49: 1<<9 | 1,
	50: 1<<4 | 1<<3 | 1<<2 | 1,
	51: 1<<6 | 1<<3 | 1<<1 | 1,
	52: 1<<3 | 1,
	53: 1<<6 | 1<<2 | 1<<1 | 1,
	54: 1<<9 | 1,
	55: 1<<7 | 1,
	56: 1<<7 | 1<<4 | 1<<2 | 1,
	57: 1<<4 | 1,
	58: 1<<19 | 1,
	59: 1<<7 | 1<<4 | 1<<2 | 1,
	60: 1<<1 | 1,
	61: 1<<5 | 1<<2 | 1<<1 | 1,
	62: 1<<29 | 1,
	63: 1<<1 | 1,
	64: 1<<4 | 1<<3 | 1<<1 | 1,
}

// field is GF(2^b) in the polynomial basis of moduli[b]. An element is a
// uint64 whose bits above b are zero; bit i is the coefficient of x^i.
// Addition is XOR. A field is a small immutable value, safe to copy and to
// share between goroutines.
type field struct {
	bits int
	mask uint64
	// low is the modulus without its x^bits term.
	low uint64
	// For the nonzero terms x^k of low, shl holds k and shr holds 63−k. Every
	// modulus is a trinomial or a pentanomial, so low has 2 or 4 terms; the
	// unused entries repeat one exponent twice, and the two copies cancel.
	// This lets reduce fold with a fixed, branch-free sequence of shifts.
	shl, shr [4]uint
}

// newField returns GF(2^b). b must be in [MinBits, MaxBits].
func newField(b int) field {
	f := field{bits: b, low: moduli[b], mask: ^uint64(0) >> uint(64-b)}
	i := 0
	for l := f.low; l != 0; l &= l - 1 {
		k := uint(bits.TrailingZeros64(l))
		f.shl[i], f.shr[i] = k, 63-k
		i++
	}
	for ; i < len(f.shl); i++ {
		f.shl[i], f.shr[i] = f.shl[0], f.shr[0]
	}
	return f
}

// Masks of the bit positions congruent to i modulo 5 (m5[i]) and modulo 4
// (m4[i]) within a 64-bit word. The carry-less multipliers split operands
// along them so that ordinary integer products cannot carry into a position
// that is kept.
var (
	m5 = [5]uint64{0x1084210842108421, 0x2108421084210842, 0x4210842108421084, 0x8421084210842108, 0x0842108421084210}
	m4 = [4]uint64{0x1111111111111111, 0x2222222222222222, 0x4444444444444444, 0x8888888888888888}
)

// clmul64 returns the 128-bit carry-less product of x and y as (hi, lo).
//
// Go has no carry-less multiply intrinsic. Each operand is split into five
// parts holding the bits at positions ≡ i (mod 5). A part has at most 13 set
// bits, so in the integer product of two parts each output position receives
// at most 13 contributions and the count (< 32) never reaches the next
// position of the same residue: at the positions of its class, each integer
// product has the parity of the carry-less one. XORing the five products of
// each class and masking the sum to that class gives the carry-less product.
func clmul64(x, y uint64) (hi, lo uint64) {
	x0, x1, x2, x3, x4 := x&m5[0], x&m5[1], x&m5[2], x&m5[3], x&m5[4]
	y0, y1, y2, y3, y4 := y&m5[0], y&m5[1], y&m5[2], y&m5[3], y&m5[4]
	var h0, h1, h2, h3, h4, l0, l1, l2, l3, l4, ph, pl uint64
	ph, pl = bits.Mul64(x0, y0)
	h0, l0 = h0^ph, l0^pl
	ph, pl = bits.Mul64(x1, y4)
	h0, l0 = h0^ph, l0^pl
	ph, pl = bits.Mul64(x2, y3)
	h0, l0 = h0^ph, l0^pl
	ph, pl = bits.Mul64(x3, y2)
	h0, l0 = h0^ph, l0^pl
	ph, pl = bits.Mul64(x4, y1)
	h0, l0 = h0^ph, l0^pl
	ph, pl = bits.Mul64(x0, y1)
	h1, l1 = h1^ph, l1^pl
	ph, pl = bits.Mul64(x1, y0)
	h1, l1 = h1^ph, l1^pl
	ph, pl = bits.Mul64(x2, y4)
	h1, l1 = h1^ph, l1^pl
	ph, pl = bits.Mul64(x3, y3)
	h1, l1 = h1^ph, l1^pl
	ph, pl = bits.Mul64(x4, y2)
	h1, l1 = h1^ph, l1^pl
	ph, pl = bits.Mul64(x0, y2)
	h2, l2 = h2^ph, l2^pl
	ph, pl = bits.Mul64(x1, y1)
	h2, l2 = h2^ph, l2^pl
	ph, pl = bits.Mul64(x2, y0)
	h2, l2 = h2^ph, l2^pl
	ph, pl = bits.Mul64(x3, y4)
	h2, l2 = h2^ph, l2^pl
	ph, pl = bits.Mul64(x4, y3)
	h2, l2 = h2^ph, l2^pl
	ph, pl = bits.Mul64(x0, y3)
	h3, l3 = h3^ph, l3^pl
	ph, pl = bits.Mul64(x1, y2)
	h3, l3 = h3^ph, l3^pl
	ph, pl = bits.Mul64(x2, y1)
	h3, l3 = h3^ph, l3^pl
	ph, pl = bits.Mul64(x3, y0)
	h3, l3 = h3^ph, l3^pl
	ph, pl = bits.Mul64(x4, y4)
	h3, l3 = h3^ph, l3^pl
	ph, pl = bits.Mul64(x0, y4)
	h4, l4 = h4^ph, l4^pl
	ph, pl = bits.Mul64(x1, y3)
	h4, l4 = h4^ph, l4^pl
	ph, pl = bits.Mul64(x2, y2)
	h4, l4 = h4^ph, l4^pl
	ph, pl = bits.Mul64(x3, y1)
	h4, l4 = h4^ph, l4^pl
	ph, pl = bits.Mul64(x4, y0)
	h4, l4 = h4^ph, l4^pl
	// Class r of the low word uses m5[r]; bit 64+p has residue (p+4) mod 5,
	// so class r of the high word uses m5[(r+1)%5].
	lo = l0&m5[0] | l1&m5[1] | l2&m5[2] | l3&m5[3] | l4&m5[4]
	hi = h0&m5[1] | h1&m5[2] | h2&m5[3] | h3&m5[4] | h4&m5[0]
	return hi, lo
}

// clmul32 returns the carry-less product of x and y, both below 2^32. With
// 32-bit operands split four ways, a part has at most 8 set bits, so the
// integer products of parts fit in 64 bits and counts stay below 16.
func clmul32(x, y uint64) uint64 {
	x0, x1, x2, x3 := x&m4[0], x&m4[1], x&m4[2], x&m4[3]
	y0, y1, y2, y3 := y&m4[0], y&m4[1], y&m4[2], y&m4[3]
	z0 := (x0*y0 ^ x1*y3 ^ x2*y2 ^ x3*y1) & m4[0]
	z1 := (x0*y1 ^ x1*y0 ^ x2*y3 ^ x3*y2) & m4[1]
	z2 := (x0*y2 ^ x1*y1 ^ x2*y0 ^ x3*y3) & m4[2]
	z3 := (x0*y3 ^ x1*y2 ^ x2*y1 ^ x3*y0) & m4[3]
	return z0 | z1 | z2 | z3
}

// reduce returns the 128-bit polynomial hi·x^64 + lo modulo the field's
// modulus. The input must have degree at most 2·bits−2 (any product of two
// elements does). Because every modulus has its second-highest term at
// degree ≤ bits/2, two folds of the part above x^bits suffice.
func (f *field) reduce(hi, lo uint64) uint64 {
	// All shift counts are below 64 (masked so that the compiler emits plain
	// shifts); x >> b is written (x >> 1) >> (b−1) so that b = 64 gives 0.
	b := uint(f.bits)
	up, down := (64-b)&63, (b-1)&63
	l0, l1, l2, l3 := f.shl[0]&63, f.shl[1]&63, f.shl[2]&63, f.shl[3]&63
	r0, r1, r2, r3 := f.shr[0]&63, f.shr[1]&63, f.shr[2]&63, f.shr[3]&63
	h := hi<<up | (lo>>1)>>down
	r := lo & f.mask
	// t1:t0 = h·low; h >> (64−k) is (h >> 1) >> (63−k), which is 0 for k = 0.
	h1 := h >> 1
	t0 := h<<l0 ^ h<<l1 ^ h<<l2 ^ h<<l3
	t1 := h1>>r0 ^ h1>>r1 ^ h1>>r2 ^ h1>>r3
	r ^= t0 & f.mask
	h = t1<<up | (t0>>1)>>down
	// h·low now fits in b bits.
	return r ^ h<<l0 ^ h<<l1 ^ h<<l2 ^ h<<l3
}

// mul returns a·b.
func (f *field) mul(a, b uint64) uint64 {
	if f.bits <= 32 {
		return f.reduce(0, clmul32(a, b))
	}
	return f.reduce(clmul64(a, b))
}

// spread32 maps the 32 low bits of x to the even bit positions of the result.
func spread32(x uint64) uint64 {
	x &= 0xffffffff
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f
	x = (x | x<<2) & 0x3333333333333333
	x = (x | x<<1) & 0x5555555555555555
	return x
}

// sqr returns a². Squaring is GF(2)-linear: it spreads the bits of a to the
// even positions before reducing.
func (f *field) sqr(a uint64) uint64 {
	return f.reduce(spread32(a>>32), spread32(a))
}

// mulX returns a·x.
func (f *field) mulX(a uint64) uint64 {
	top := a >> uint(f.bits-1)
	return (a<<1)&f.mask ^ (-top & f.low)
}

// inv returns 1/a for a ≠ 0, and 0 for a = 0. It computes a^(2^bits − 2) with
// the Itoh–Tsujii addition chain: (a^(2^(bits−1) − 1))², where
// a^(2^(2k) − 1) = (a^(2^k − 1))^(2^k) · a^(2^k − 1).
func (f *field) inv(a uint64) uint64 {
	n := f.bits - 1
	beta := a // a^(2^k − 1)
	k := 1
	for i := bits.Len(uint(n)) - 2; i >= 0; i-- {
		t := beta
		for range k {
			t = f.sqr(t)
		}
		beta = f.mul(t, beta)
		k *= 2
		if n>>uint(i)&1 == 1 {
			beta = f.mul(f.sqr(beta), a)
			k++
		}
	}
	return f.sqr(beta)
}

// mulTable multiplies many elements by one fixed element using byte-indexed
// lookup tables: row j holds c·v·x^(8j) for every byte value v. Building a
// table costs about 256 XORs per byte of element size, so it pays off only
// when the same factor is used for many (dozens of) products.
type mulTable struct {
	rows  [8][256]uint64
	lanes int
}

// set prepares t for multiplication by c.
func (t *mulTable) set(f *field, c uint64) {
	t.lanes = (f.bits + 7) / 8
	v := c // c·x^(8j+k)
	for j := range t.lanes {
		row := t.rows[j][:]
		row[0] = 0
		for bit := 1; bit < 256; bit <<= 1 {
			lo := row[:bit]
			hi := row[bit : 2*bit]
			hi = hi[:len(lo)]
			for i, x := range lo {
				hi[i] = x ^ v
			}
			v = f.mulX(v)
		}
	}
}

// mul returns c·y for the factor c given to set.
func (t *mulTable) mul(y uint64) uint64 {
	r := t.rows[0][y&0xff]
	for j := 1; j < t.lanes; j++ {
		y >>= 8
		r ^= t.rows[j][y&0xff]
	}
	return r
}

// mulTable4 is a smaller variant of mulTable indexed by 4-bit nibbles: row j
// holds c·v·x^(4j) for every nibble v. It is about eight times cheaper to
// build and half as fast to use, which suits vectors of a few dozen to a few
// hundred elements.
type mulTable4 struct {
	rows  [16][16]uint64
	lanes int
}

// set prepares t for multiplication by c.
func (t *mulTable4) set(f *field, c uint64) {
	t.lanes = (f.bits + 3) / 4
	v := c // c·x^(4j)
	for j := range t.lanes {
		row := &t.rows[j]
		v1 := f.mulX(v)
		v2 := f.mulX(v1)
		v3 := f.mulX(v2)
		row[0], row[1], row[2], row[3] = 0, v, v1, v^v1
		row[4], row[5], row[6], row[7] = v2, v2^v, v2^v1, v2^v1^v
		for i := range 8 {
			row[8+i] = row[i] ^ v3
		}
		v = f.mulX(v3)
	}
}
