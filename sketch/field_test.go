package sketch

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// refMul is a bit-serial shift-and-add multiplication in GF(2^b), written
// independently of clmul64/clmul32/reduce so that it can check them.
func refMul(f *field, a, b uint64) uint64 {
	var r uint64
	for b != 0 {
		if b&1 == 1 {
			r ^= a
		}
		a = f.mulX(a)
		b >>= 1
	}
	return r
}

// randElem returns a uniformly random element of f, zero included.
func randElem(rng *rand.Rand, f *field) uint64 { return rng.Uint64() & f.mask }

// randNonzero returns a uniformly random nonzero element of f.
func randNonzero(rng *rand.Rand, f *field) uint64 {
	for {
		if v := randElem(rng, f); v != 0 {
			return v
		}
	}
}

func TestResidueMasks(t *testing.T) {
	for i := range 64 {
		if got := m5[i%5] >> uint(i) & 1; got != 1 {
			t.Errorf("m5[%d] lacks bit %d", i%5, i)
		}
		if got := m4[i%4] >> uint(i) & 1; got != 1 {
			t.Errorf("m4[%d] lacks bit %d", i%4, i)
		}
	}
	var u5, u4 uint64
	for _, m := range m5 {
		if u5&m != 0 {
			t.Errorf("m5 masks overlap")
		}
		u5 |= m
	}
	for _, m := range m4 {
		if u4&m != 0 {
			t.Errorf("m4 masks overlap")
		}
		u4 |= m
	}
	if u5 != ^uint64(0) || u4 != ^uint64(0) {
		t.Errorf("masks do not cover 64 bits: %x %x", u5, u4)
	}
}

// TestClmul checks the carry-less multipliers against a bit-serial product,
// including the all-ones operands that maximise the per-position counts.
func TestClmul(t *testing.T) {
	ref := func(x, y uint64) (hi, lo uint64) {
		for i := range 64 {
			if y>>uint(i)&1 == 1 {
				lo ^= x << uint(i)
				if i > 0 {
					hi ^= x >> uint(64-i)
				}
			}
		}
		return hi, lo
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pairs := [][2]uint64{{^uint64(0), ^uint64(0)}, {0, 5}, {1, 1}, {1 << 63, 1 << 63}}
	for range 2000 {
		pairs = append(pairs, [2]uint64{rng.Uint64(), rng.Uint64()})
	}
	for _, p := range pairs {
		wh, wl := ref(p[0], p[1])
		if gh, gl := clmul64(p[0], p[1]); gh != wh || gl != wl {
			t.Fatalf("clmul64(%#x, %#x) = %#x:%#x, want %#x:%#x", p[0], p[1], gh, gl, wh, wl)
		}
		x, y := p[0]&0xffffffff, p[1]&0xffffffff
		_, wl = ref(x, y)
		if gl := clmul32(x, y); gl != wl {
			t.Fatalf("clmul32(%#x, %#x) = %#x, want %#x", x, y, gl, wl)
		}
	}
}

// TestModuliIrreducible checks with Rabin's test that every modulus is
// irreducible of degree b, so that every field really is GF(2^b):
// X^(2^b) ≡ X, and X^(2^(b/q)) − X is a unit for every prime q dividing b.
func TestModuliIrreducible(t *testing.T) {
	for b := MinBits; b <= MaxBits; b++ {
		f := newField(b)
		frob := func(k int) uint64 { // X^(2^k) in GF(2)[X]/(modulus)
			v := uint64(2)
			for range k {
				v = refMul(&f, v, v)
			}
			return v
		}
		if got := frob(b); got != 2 {
			t.Errorf("b=%d: X^(2^b) = %#x, want X", b, got)
		}
		for q := 2; q <= b; q++ {
			if b%q != 0 || !isPrime(q) {
				continue
			}
			u := frob(b/q) ^ 2
			if r := mulRank(&f, u); r != b {
				t.Errorf("b=%d: X^(2^%d) − X is a zero divisor (rank %d), modulus reducible", b, b/q, r)
			}
		}
	}
}

func isPrime(n int) bool {
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return n >= 2
}

// mulRank returns the GF(2)-rank of multiplication by u in GF(2)[X]/(modulus).
func mulRank(f *field, u uint64) int {
	rows := make([]uint64, f.bits)
	v := u
	for i := range rows {
		rows[i] = v
		v = f.mulX(v)
	}
	rank := 0
	for bit := f.bits - 1; bit >= 0; bit-- {
		pivot := -1
		for i := rank; i < len(rows); i++ {
			if rows[i]>>uint(bit)&1 == 1 {
				pivot = i
				break
			}
		}
		if pivot < 0 {
			continue
		}
		rows[rank], rows[pivot] = rows[pivot], rows[rank]
		for i := range rows {
			if i != rank && rows[i]>>uint(bit)&1 == 1 {
				rows[i] ^= rows[rank]
			}
		}
		rank++
	}
	return rank
}

// TestFieldAxioms checks every field size on random samples: agreement with
// the bit-serial product, commutativity, associativity, distributivity,
// inverses, squaring, multiplication by X and the table multiplier.
func TestFieldAxioms(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for b := MinBits; b <= MaxBits; b++ {
		t.Run(fmt.Sprintf("b=%d", b), func(t *testing.T) {
			f := newField(b)
			var tab mulTable
			var tab4 mulTable4
			for range 300 {
				x, y, z := randElem(rng, &f), randElem(rng, &f), randElem(rng, &f)
				xy := f.mul(x, y)
				if xy&^f.mask != 0 {
					t.Fatalf("mul(%#x, %#x) = %#x has bits above %d", x, y, xy, b)
				}
				if want := refMul(&f, x, y); xy != want {
					t.Fatalf("mul(%#x, %#x) = %#x, bit-serial gives %#x", x, y, xy, want)
				}
				if yx := f.mul(y, x); yx != xy {
					t.Fatalf("mul not commutative: %#x·%#x", x, y)
				}
				if l, r := f.mul(xy, z), f.mul(x, f.mul(y, z)); l != r {
					t.Fatalf("mul not associative: (%#x·%#x)·%#x = %#x, x·(y·z) = %#x", x, y, z, l, r)
				}
				if l, r := f.mul(x, y^z), xy^f.mul(x, z); l != r {
					t.Fatalf("mul not distributive over %#x, %#x, %#x", x, y, z)
				}
				if sq, want := f.sqr(x), f.mul(x, x); sq != want {
					t.Fatalf("sqr(%#x) = %#x, mul gives %#x", x, sq, want)
				}
				if got, want := f.mulX(x), f.mul(x, 2); got != want {
					t.Fatalf("mulX(%#x) = %#x, mul gives %#x", x, got, want)
				}
				if f.mul(x, 1) != x || f.mul(x, 0) != 0 {
					t.Fatalf("1 or 0 is not the identity or absorbing element for %#x", x)
				}
				if x != 0 {
					if inv := f.inv(x); f.mul(x, inv) != 1 {
						t.Fatalf("inv(%#x) = %#x, product %#x", x, inv, f.mul(x, inv))
					}
				}
				tab.set(&f, x)
				if got := tab.mul(y); got != xy {
					t.Fatalf("table mul(%#x, %#x) = %#x, want %#x", x, y, got, xy)
				}
				tab4.set(&f, x)
				var got4 uint64
				for j := range tab4.lanes {
					got4 ^= tab4.rows[j][y>>(4*uint(j))&15]
				}
				if got4 != xy {
					t.Fatalf("nibble table mul(%#x, %#x) = %#x, want %#x", x, y, got4, xy)
				}
			}
			if f.inv(0) != 0 {
				t.Errorf("inv(0) = %#x, want 0", f.inv(0))
			}
			// The multiplicative group has order 2^b − 1: a^(2^b) = a.
			x := randNonzero(rng, &f)
			v := x
			for range b {
				v = f.sqr(v)
			}
			if v != x {
				t.Errorf("x^(2^b) = %#x, want %#x", v, x)
			}
		})
	}
}

func TestArithDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, b := range []int{7, 32, 33, 64} {
		a := &arith{f: newField(b)}
		x := make([]uint64, table8Min+10)
		y := make([]uint64, table8Min+20)
		for i := range x {
			x[i] = randElem(rng, &a.f)
		}
		for i := range y {
			y[i] = randElem(rng, &a.f)
		}
		var want uint64
		for i := range x {
			want ^= a.f.mul(x[i], y[len(y)-1-i])
		}
		if got := a.dot(x, y); got != want {
			t.Errorf("b=%d: dot = %#x, want %#x", b, got, want)
		}
		// addMul on each side of both table thresholds.
		for _, n := range []int{1, table4Min - 1, table4Min, table8Min - 1, table8Min, table8Min + 10} {
			dst := make([]uint64, n)
			c := randNonzero(rng, &a.f)
			a.addMul(dst, x[:n], c)
			for i := range dst {
				if dst[i] != a.f.mul(c, x[i]) {
					t.Fatalf("b=%d n=%d: addMul[%d] = %#x, want %#x", b, n, i, dst[i], a.f.mul(c, x[i]))
				}
			}
		}
	}
}

// TestFindRoots checks root finding directly on products of distinct linear
// factors, and its refusal of polynomials that do not split into distinct
// roots: a repeated root, and an irreducible quadratic.
func TestFindRoots(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, b := range []int{2, 3, 8, 12, 32, 64} {
		a := &arith{f: newField(b)}
		f := &a.f
		for _, n := range []int{1, 2, 3, 5, 17} {
			if uint64(n) > f.mask {
				continue
			}
			want := distinctNonzero(rng, f, n)
			p := []uint64{1}
			for _, r := range want {
				p = polyMulLinear(f, p, r)
			}
			got, ok := a.findRoots(nil, p, randNonzero(rng, f), 0, false)
			if !ok || !sameSet(got, want) {
				t.Errorf("b=%d n=%d: roots %x ok=%v, want %x", b, n, got, ok, want)
			}
		}
		r := randNonzero(rng, f)
		sq := polyMulLinear(f, polyMulLinear(f, []uint64{1}, r), r)
		if got, ok := a.findRoots(nil, sq, 1, 0, false); ok {
			t.Errorf("b=%d: (X−r)² gave roots %x", b, got)
		}
		// X² + X + c has no root exactly when Tr(c) = 1. The trace is a
		// nonzero linear form, so some basis element X^i has trace 1.
		for i := range b {
			if c := uint64(1) << uint(i); trace(f, c) == 1 {
				if got, ok := a.findRoots(nil, []uint64{c, 1, 1}, 1, 0, false); ok {
					t.Errorf("b=%d: irreducible X²+X+%#x gave roots %x", b, c, got)
				}
				break
			}
		}
	}
}

func trace(f *field, c uint64) uint64 {
	t, v := uint64(0), c
	for range f.bits {
		t ^= v
		v = f.sqr(v)
	}
	return t
}

// polyMulLinear returns p·(X + r).
func polyMulLinear(f *field, p []uint64, r uint64) []uint64 {
	out := make([]uint64, len(p)+1)
	for i, c := range p {
		out[i+1] ^= c
		out[i] ^= f.mul(c, r)
	}
	return out
}

func BenchmarkFieldMul(b *testing.B) {
	for _, bits := range []int{32, 64} {
		f := newField(bits)
		x, y := uint64(0x123456789abcdef)&f.mask, uint64(0xfedcba987654321)&f.mask
		b.Run(fmt.Sprintf("b=%d/mul", bits), func(b *testing.B) {
			for b.Loop() {
				x = f.mul(x, y) | 1
			}
		})
		b.Run(fmt.Sprintf("b=%d/table", bits), func(b *testing.B) {
			var tab mulTable
			tab.set(&f, y)
			for b.Loop() {
				x = tab.mul(x) | 1
			}
		})
		b.Run(fmt.Sprintf("b=%d/tableset", bits), func(b *testing.B) {
			var tab mulTable
			for b.Loop() {
				tab.set(&f, y)
			}
		})
		b.Run(fmt.Sprintf("b=%d/inv", bits), func(b *testing.B) {
			for b.Loop() {
				x = f.inv(x) | 1
			}
		})
	}
	_ = bits.Len
}
