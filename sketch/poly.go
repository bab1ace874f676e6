package sketch

// Polynomials over GF(2^b) are slices of coefficients, lowest degree first.
// Unless stated otherwise they are trimmed: the last coefficient is nonzero,
// and the zero polynomial is the empty slice.

// Thresholds for multiplying a vector by one factor: below table4Min
// elements, field.mul per element is fastest; from table4Min, a mulTable4
// (about 0.1 µs to build); from table8Min, a mulTable (0.4–0.8 µs to build,
// fewer lookups per product). Chosen from decode CPU times for 32- and 64-bit
// fields, which vary little between 400 and 1000 for table8Min.
const (
	table4Min = 16
	table8Min = 512
)

// addTableMin is the capacity from which Add multiplies through a mulTable.
// Add's products form a dependency chain, so the table pays off earlier.
const addTableMin = 64

// arith is the scratch state for polynomial arithmetic over one field. It is
// not safe for concurrent use.
type arith struct {
	f    field
	tab  mulTable
	tab4 mulTable4
}

// addMul sets dst[i] ^= c·src[i] for every i < len(src). dst must be at least
// as long as src.
func (a *arith) addMul(dst, src []uint64, c uint64) {
	if c == 0 {
		return
	}
	dst = dst[:len(src)]
	switch {
	case len(src) >= table8Min:
		a.tab.set(&a.f, c)
		t := &a.tab
		if t.lanes <= 4 {
			// Elements of at most 32 bits: four lookups each.
			for i, v := range src {
				dst[i] ^= t.rows[0][v&0xff] ^ t.rows[1][v>>8&0xff] ^ t.rows[2][v>>16&0xff] ^ t.rows[3][v>>24&0xff]
			}
			return
		}
		for i, v := range src {
			dst[i] ^= t.rows[0][v&0xff] ^ t.rows[1][v>>8&0xff] ^ t.rows[2][v>>16&0xff] ^ t.rows[3][v>>24&0xff] ^
				t.rows[4][v>>32&0xff] ^ t.rows[5][v>>40&0xff] ^ t.rows[6][v>>48&0xff] ^ t.rows[7][v>>56]
		}
	case len(src) >= table4Min:
		a.tab4.set(&a.f, c)
		t := &a.tab4
		if t.lanes <= 8 {
			for i, v := range src {
				dst[i] ^= t.rows[0][v&15] ^ t.rows[1][v>>4&15] ^ t.rows[2][v>>8&15] ^ t.rows[3][v>>12&15] ^
					t.rows[4][v>>16&15] ^ t.rows[5][v>>20&15] ^ t.rows[6][v>>24&15] ^ t.rows[7][v>>28&15]
			}
			return
		}
		for i, v := range src {
			dst[i] ^= t.rows[0][v&15] ^ t.rows[1][v>>4&15] ^ t.rows[2][v>>8&15] ^ t.rows[3][v>>12&15] ^
				t.rows[4][v>>16&15] ^ t.rows[5][v>>20&15] ^ t.rows[6][v>>24&15] ^ t.rows[7][v>>28&15] ^
				t.rows[8][v>>32&15] ^ t.rows[9][v>>36&15] ^ t.rows[10][v>>40&15] ^ t.rows[11][v>>44&15] ^
				t.rows[12][v>>48&15] ^ t.rows[13][v>>52&15] ^ t.rows[14][v>>56&15] ^ t.rows[15][v>>60]
		}
	default:
		for i, v := range src {
			dst[i] ^= a.f.mul(c, v)
		}
	}
}

// dot returns the sum of x[i]·y[len(y)−1−i] over i < len(x); len(y) must be at
// least len(x). The carry-less products are accumulated unreduced and reduced
// once.
func (a *arith) dot(x, y []uint64) uint64 {
	f := &a.f
	y = y[len(y)-len(x):]
	n := len(y) - 1
	if f.bits <= 32 {
		var acc uint64
		for i, v := range x {
			acc ^= clmul32(v, y[n-i])
		}
		return f.reduce(0, acc)
	}
	var hi, lo uint64
	for i, v := range x {
		h, l := clmul64(v, y[n-i])
		hi ^= h
		lo ^= l
	}
	return f.reduce(hi, lo)
}

// trim drops zero leading coefficients.
func trim(p []uint64) []uint64 {
	for len(p) > 0 && p[len(p)-1] == 0 {
		p = p[:len(p)-1]
	}
	return p
}

// makeMonic scales p (nonzero, trimmed) so its leading coefficient is 1.
func (a *arith) makeMonic(p []uint64) {
	lead := p[len(p)-1]
	if lead == 1 {
		return
	}
	inv := a.f.inv(lead)
	for i := range p[:len(p)-1] {
		p[i] = a.f.mul(p[i], inv)
	}
	p[len(p)-1] = 1
}

// mod reduces val modulo the monic polynomial m (degree ≥ 1) in place and
// returns the trimmed remainder, which aliases val. val need not be trimmed.
// If quot is not nil it receives the quotient, and must have room for
// len(val)−len(m)+1 coefficients.
func (a *arith) mod(val, m, quot []uint64) []uint64 {
	d := len(m) - 1
	body := m[:d]
	for k := len(val) - 1; k >= d; k-- {
		c := val[k]
		if quot != nil {
			quot[k-d] = c
		}
		if c != 0 {
			val[k] = 0
			a.addMul(val[k-d:k], body, c)
		}
	}
	return trim(val[:min(len(val), d)])
}

// gcd returns the monic greatest common divisor of x and y, both trimmed and
// not both zero. It overwrites both inputs; the result aliases one of them.
func (a *arith) gcd(x, y []uint64) []uint64 {
	if len(x) < len(y) {
		x, y = y, x
	}
	for len(y) > 0 {
		if len(y) == 1 {
			return []uint64{1}
		}
		a.makeMonic(y)
		x = a.mod(x, y, nil)
		x, y = y, x
	}
	a.makeMonic(x)
	return x
}

// traceMod returns Tr(r·X) mod m as a polynomial in X, where
// Tr(y) = y + y² + y⁴ + … + y^(2^(b−1)) is the trace map of GF(2^b) to GF(2).
// m is monic of degree n ≥ 2. buf must have room for 2n−1 coefficients; the
// (untrimmed, length n) result aliases it.
func (a *arith) traceMod(m []uint64, r uint64, buf []uint64) []uint64 {
	f := &a.f
	n := len(m) - 1
	buf = buf[:2*n-1]
	clear(buf)
	buf[1] = r
	for range f.bits - 1 {
		// Square in place: coefficient j moves to 2j; odd positions become 0.
		for j := n - 1; j > 0; j-- {
			buf[2*j] = f.sqr(buf[j])
			buf[2*j-1] = 0
		}
		buf[0] = f.sqr(buf[0])
		a.mod(buf, m, nil)
		buf[1] ^= r
	}
	return buf[:n]
}

// splitsDistinct reports whether t² + t ≡ 0 (mod m), for t of degree < deg m.
// With t = Tr(r·X) mod m and r ≠ 0 this holds exactly when m divides
// X^(2^b) − X, that is, when m splits into distinct linear factors over
// GF(2^b): t² + t = r·X + (r·X)^(2^b) = r·(X + X^(2^b)).
func (a *arith) splitsDistinct(m, t []uint64) bool {
	n := len(m) - 1
	sq := make([]uint64, 2*n-1)
	for j, v := range t {
		sq[2*j] = a.f.sqr(v)
	}
	for j, v := range t {
		sq[j] ^= v
	}
	return len(a.mod(sq, m, nil)) == 0
}

// findRoots appends to roots the roots of the monic polynomial p of degree
// ≥ 1 with the Berlekamp trace algorithm and returns them, or returns false
// if p does not split into distinct linear factors. r is a nonzero field
// element that randomises the splits; depth counts the splitting attempts
// made on the path from the original polynomial. verified records that p is
// already known to split into distinct linear factors.
func (a *arith) findRoots(roots []uint64, p []uint64, r uint64, depth int, verified bool) ([]uint64, bool) {
	f := &a.f
	n := len(p) - 1
	if n == 1 {
		return append(roots, p[0]), true
	}
	buf := make([]uint64, 2*n-1)
	for {
		// The attempts along one path use r, r·X, r·X², …, which are
		// linearly independent over GF(2). After b of them every pair of
		// distinct roots has been separated, so a polynomial of degree ≥ 2
		// at depth b (or of degree > 2^(b−depth)) cannot split into distinct
		// roots.
		if depth >= f.bits || (f.bits-depth < 64 && uint64(n-1)>>uint(f.bits-depth) != 0) {
			return roots, false
		}
		t := a.traceMod(p, r, buf)
		if !verified {
			if !a.splitsDistinct(p, t) {
				return roots, false
			}
			verified = true
		}
		depth++
		r = f.mulX(r)
		g := a.gcd(append([]uint64(nil), trim(t)...), append([]uint64(nil), p...))
		if len(g) <= 1 || len(g) == len(p) {
			continue
		}
		rem := append([]uint64(nil), p...)
		q := make([]uint64, len(p)-len(g)+1)
		if rest := a.mod(rem, g, q); len(rest) != 0 {
			return roots, false
		}
		var ok bool
		if roots, ok = a.findRoots(roots, g, r, depth, true); !ok {
			return roots, false
		}
		return a.findRoots(roots, q, r, depth, true)
	}
}

// berlekampMassey returns the connection polynomial C (C[0] = 1, length L+1)
// of the shortest linear-feedback shift register that generates s, or false
// if its length L would exceed maxDeg.
func (a *arith) berlekampMassey(s []uint64, maxDeg int) ([]uint64, bool) {
	f := &a.f
	c := make([]uint64, 1, maxDeg+1)
	c[0] = 1
	b := make([]uint64, 1, maxDeg+1)
	b[0] = 1
	tmp := make([]uint64, 0, maxDeg+1)
	l, m := 0, 1
	bLast, bInv := uint64(1), uint64(1)
	haveInv := true
	for n := range s {
		// Discrepancy: s[n] + Σ_{i=1..l} c[i]·s[n−i].
		disc := s[n] ^ a.dot(c[1:l+1], s[n-l:n])
		if disc == 0 {
			m++
			continue
		}
		if !haveInv {
			bInv = f.inv(bLast)
			haveInv = true
		}
		coef := f.mul(disc, bInv)
		if 2*l <= n {
			nl := n + 1 - l
			if nl > maxDeg {
				return nil, false
			}
			tmp = append(tmp[:0], c...)
			c = growZero(c, max(nl+1, m+len(b)))
			a.addMul(c[m:], b, coef)
			b, tmp = tmp, b
			l = nl
			bLast, haveInv = disc, false
			m = 1
		} else {
			c = growZero(c, m+len(b))
			a.addMul(c[m:], b, coef)
			m++
		}
	}
	return c[:l+1], true
}

// growZero extends p with zero coefficients to length n (if shorter).
func growZero(p []uint64, n int) []uint64 {
	for len(p) < n {
		p = append(p, 0)
	}
	return p
}

// addElement sets syn[i] ^= e^(2i+1) for every i: it adds the element e
// (nonzero, reduced) to the odd power sums of a sketch. tab is used as
// scratch space when syn is long enough to make a table worthwhile; it may be
// nil otherwise.
func addElement(f *field, syn []uint64, e uint64, tab *mulTable) {
	e2 := f.sqr(e)
	if len(syn) >= addTableMin {
		tab.set(f, e2)
		for i := range syn {
			syn[i] ^= e
			e = tab.mul(e)
		}
		return
	}
	for i := range syn {
		syn[i] ^= e
		e = f.mul(e, e2)
	}
}
