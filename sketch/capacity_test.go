package sketch

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"
)

// exactBaseFPBits computes b·c − ⌈log2 Σ_{k=0..c} C(2^b−1, k)⌉ exactly.
func exactBaseFPBits(b, c int) int {
	n := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(b)), big.NewInt(1))
	sum, term := big.NewInt(0), big.NewInt(1)
	for k := 0; k <= c; k++ {
		sum.Add(sum, term)
		// term = C(n, k+1) = term·(n−k)/(k+1)
		term.Mul(term, new(big.Int).Sub(n, big.NewInt(int64(k))))
		term.Quo(term, big.NewInt(int64(k+1)))
	}
	ceilLog := sum.BitLen() // ⌈log2 sum⌉ unless sum is a power of two
	if new(big.Int).And(sum, new(big.Int).Sub(sum, big.NewInt(1))).Sign() == 0 {
		ceilLog--
	}
	return b*c - ceilLog
}

// TestBaseFPBitsExact checks the fixed-point formula and correction tables
// against exact big-integer arithmetic wherever libminisketch promises
// exactness (values below 256), for b ≤ 20 and c < 100 as libminisketch's
// own test does.
func TestBaseFPBitsExact(t *testing.T) {
	for b := MinBits; b <= 20; b++ {
		for c := 0; c < 100; c++ {
			exact := exactBaseFPBits(b, c)
			got := int(baseFPBits(uint32(b), uint32(c)))
			if got != exact && (exact < 256 || got < 256) {
				t.Errorf("baseFPBits(%d, %d) = %d, exact %d", b, c, got, exact)
			}
		}
	}
}

func TestLog2Factorial(t *testing.T) {
	f := big.NewInt(1)
	for x := 1; x <= 2000; x++ {
		f.Mul(f, big.NewInt(int64(x)))
		exact := f.BitLen() - 1 // ⌊log2 x!⌋
		got := int(log2Factorial(uint32(x)))
		if got > exact || (x <= 57 && got != exact) {
			t.Errorf("log2Factorial(%d) = %d, exact %d", x, got, exact)
		}
	}
}

// TestComputeCapacityLibminisketch compares with libminisketch's
// compute_capacity and compute_max_elements for every b and a grid of sizes
// and fpbits.
func TestComputeCapacityLibminisketch(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 4, 5, 7, 8, 10, 13, 16, 20, 30, 50, 64, 100, 200, 1000, 4096}
	rows := 0
	for _, v := range vectorLines(t, "libminisketch_capacity.txt") {
		bits, fpbits := atoi(t, v[0]), atoi(t, v[1])
		if len(v) != 2+len(sizes) {
			t.Fatalf("malformed row %v", v)
		}
		for i, n := range sizes {
			cap, maxel, ok := strings.Cut(v[2+i], "/")
			if !ok {
				t.Fatalf("malformed cell %q", v[2+i])
			}
			if got, want := ComputeCapacity(bits, n, fpbits), atoi(t, cap); got != want {
				t.Errorf("ComputeCapacity(%d, %d, %d) = %d, libminisketch %d", bits, n, fpbits, got, want)
			}
			if got, want := ComputeMaxElements(bits, n, fpbits), atoi(t, maxel); got != want {
				t.Errorf("ComputeMaxElements(%d, %d, %d) = %d, libminisketch %d", bits, n, fpbits, got, want)
			}
		}
		rows++
	}
	if rows != 63*9 {
		t.Errorf("%d rows, want %d", rows, 63*9)
	}
}

func TestComputeCapacity(t *testing.T) {
	tests := []struct {
		bits, n, fpbits int
		want            int
	}{
		{32, 8, 16, 9}, // minisketch.h and observer notes §3.3
		{32, 0, 16, 1},
		{64, 10, 0, 10},
		{12, 4, 0, 4},
		{0, 8, 16, 0},
		{1, 8, 16, 0},
		{65, 8, 16, 0},
		{32, -1, 16, 0},
		{32, 8, -1, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d/%d", tt.bits, tt.n, tt.fpbits), func(t *testing.T) {
			if got := ComputeCapacity(tt.bits, tt.n, tt.fpbits); got != tt.want {
				t.Errorf("ComputeCapacity = %d, want %d", got, tt.want)
			}
		})
	}
	// The documented non-inverse example.
	if got := ComputeMaxElements(32, 9, 16); got != 9 {
		t.Errorf("ComputeMaxElements(32, 9, 16) = %d, want 9", got)
	}
	if got := ComputeMaxElements(32, 8, 16); got != 7 {
		t.Errorf("ComputeMaxElements(32, 8, 16) = %d, want 7", got)
	}
}

// TestComputeCapacityBound checks the guarantee itself: for the capacity
// returned, the probability that a random sketch decodes for up to n
// elements is at most 2^−fpbits.
func TestComputeCapacityBound(t *testing.T) {
	for _, bits := range []int{8, 12, 16, 32, 64} {
		for _, n := range []int{1, 2, 5, 10, 20} {
			for _, fp := range []int{8, 16, 32, 64} {
				c := ComputeCapacity(bits, n, fp)
				if c < n {
					t.Fatalf("ComputeCapacity(%d, %d, %d) = %d < n", bits, n, fp, c)
				}
				if p := wrongDecodeProb(bits, c, n); p > 1.0001*math.Exp2(float64(-fp)) {
					t.Errorf("b=%d n=%d fpbits=%d: capacity %d has wrong-decode probability %.3g > 2^-%d", bits, n, fp, c, p, fp)
				}
			}
		}
	}
}
