package sketch

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// distinctNonzero returns n distinct random nonzero elements of f.
func distinctNonzero(rng *rand.Rand, f *field, n int) []uint64 {
	seen := make(map[uint64]bool, n)
	out := make([]uint64, 0, n)
	for len(out) < n {
		v := randNonzero(rng, f)
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func sameSet(a, b []uint64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func mustNew(t testing.TB, bits, capacity int) *Sketch {
	t.Helper()
	s, err := New(bits, capacity)
	if err != nil {
		t.Fatalf("New(%d, %d): %v", bits, capacity, err)
	}
	return s
}

func sketchOf(t testing.TB, bits, capacity int, elems []uint64) *Sketch {
	t.Helper()
	s := mustNew(t, bits, capacity)
	for _, e := range elems {
		s.Add(e)
	}
	return s
}

// vectorLines returns the fields of every non-comment line of a testdata file.
func vectorLines(t *testing.T, name string) [][]string {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Fields(line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no vectors", name)
	}
	return out
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hexList parses a comma-separated list of hex numbers; "-" is empty.
func hexList(t *testing.T, s string) []uint64 {
	t.Helper()
	if s == "-" {
		return nil
	}
	var out []uint64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(p, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	if s == "-" {
		return []byte{}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadmeExample is the usage example of the libminisketch README: Alice
// sketches [3000, 3009], Bob [3002, 3011], 12-bit elements, capacity 4. The
// serializations are libminisketch's output for the same calls.
func TestReadmeExample(t *testing.T) {
	alice := mustNew(t, 12, 4)
	for i := uint64(3000); i < 3010; i++ {
		alice.Add(i)
	}
	if got := alice.SerializedSize(); got != 6 {
		t.Fatalf("SerializedSize = %d, want 6 (4 12-bit values)", got)
	}
	buf := alice.Serialize()
	if got, want := hex.EncodeToString(buf), "01e0d2f97469"; got != want {
		t.Errorf("Alice's sketch = %s, libminisketch gives %s", got, want)
	}
	bob := mustNew(t, 12, 4)
	for i := uint64(3002); i < 3012; i++ {
		bob.Add(i)
	}
	if got, want := hex.EncodeToString(bob.Serialize()), "0190814badb8"; got != want {
		t.Errorf("Bob's sketch = %s, libminisketch gives %s", got, want)
	}
	received := mustNew(t, 12, 4)
	if err := received.Deserialize(buf); err != nil {
		t.Fatal(err)
	}
	if err := bob.Merge(received); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(bob.Serialize()), "007053b2d9d1"; got != want {
		t.Errorf("merged sketch = %s, libminisketch gives %s", got, want)
	}
	diff, err := bob.Decode(4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{3000, 3001, 3010, 3011}; !slices.Equal(diff, want) {
		t.Errorf("Decode = %v, want %v", diff, want)
	}
	if _, err := bob.Decode(3); !errors.Is(err, ErrDecodeFailed) {
		t.Errorf("Decode(3) of a 4-element difference: err = %v, want ErrDecodeFailed", err)
	}
}

// TestLibminisketchSketches compares serializations with libminisketch's for
// every element size 2..64 and capacities 1, 2, 5, 9.
func TestLibminisketchSketches(t *testing.T) {
	seen := map[int]bool{}
	for _, v := range vectorLines(t, "libminisketch_sketches.txt") {
		bits, capacity := atoi(t, v[0]), atoi(t, v[1])
		seen[bits] = true
		elems := hexList(t, v[2])
		want := unhex(t, v[3])
		s := sketchOf(t, bits, capacity, elems)
		if got := s.Serialize(); !bytes.Equal(got, want) {
			t.Errorf("bits=%d capacity=%d elements=%s: serialized %x, libminisketch %x", bits, capacity, v[2], got, want)
		}
		d := mustNew(t, bits, capacity)
		if err := d.Deserialize(want); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.syn, s.syn) {
			t.Errorf("bits=%d capacity=%d: deserializing libminisketch bytes gives %x, want %x", bits, capacity, d.syn, s.syn)
		}
	}
	for b := MinBits; b <= MaxBits; b++ {
		if !seen[b] {
			t.Errorf("no vector for bits=%d", b)
		}
	}
}

// TestLibminisketchDecode compares Decode with minisketch_decode on random
// bytes and on sketches of sets smaller and larger than the capacity,
// including sketches that libminisketch decodes to a set that is not the
// original (false positives in small fields).
func TestLibminisketchDecode(t *testing.T) {
	var ok, failed int
	for _, v := range vectorLines(t, "libminisketch_decode.txt") {
		bits, capacity, maxElems := atoi(t, v[0]), atoi(t, v[1]), atoi(t, v[2])
		s := mustNew(t, bits, capacity)
		if err := s.Deserialize(unhex(t, v[3])); err != nil {
			t.Fatal(err)
		}
		got, err := s.Decode(maxElems)
		var gotStr string
		switch {
		case errors.Is(err, ErrDecodeFailed):
			gotStr = "fail"
			failed++
		case err != nil:
			t.Fatalf("%v: %v", v, err)
		case len(got) == 0:
			gotStr = "empty"
			ok++
		default:
			parts := make([]string, len(got))
			for i, e := range got {
				parts[i] = strconv.FormatUint(e, 16)
			}
			gotStr = strings.Join(parts, ",")
			ok++
		}
		if gotStr != v[4] {
			t.Errorf("bits=%d capacity=%d max=%d sketch=%s: Decode = %s, libminisketch %s", bits, capacity, maxElems, v[3], gotStr, v[4])
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("vectors cover %d successes and %d failures; want both", ok, failed)
	}
}

// TestBIP330Vectors checks 32-bit sketches against the reference code of
// BIP-330.
func TestBIP330Vectors(t *testing.T) {
	for _, v := range vectorLines(t, "bip330_sketches.txt") {
		capacity := atoi(t, v[0])
		ids := hexList(t, v[1])
		want := unhex(t, v[2])
		s := sketchOf(t, 32, capacity, ids)
		if len(want) != 4*capacity {
			t.Fatalf("vector of %d bytes for capacity %d", len(want), capacity)
		}
		if got := s.Serialize(); !bytes.Equal(got, want) {
			t.Errorf("capacity=%d ids=%s: %x, BIP-330 reference %x", capacity, v[1], got, want)
		}
		if len(ids) <= capacity {
			got, err := s.Decode(capacity)
			if err != nil || !sameSet(got, ids) {
				t.Errorf("capacity=%d ids=%s: Decode = %x, %v", capacity, v[1], got, err)
			}
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		bits     int
		capacity int
		wantErr  bool
		wantSize int
	}{
		{"smallest", 2, 1, false, 1},
		{"readme", 12, 4, false, 6},
		{"bip330", 32, 10, false, 40},
		{"odd bits", 13, 3, false, 5},
		{"largest", 64, 3, false, 24},
		{"bits too small", 1, 4, true, 0},
		{"bits too large", 65, 4, true, 0},
		{"zero capacity", 32, 0, true, 0},
		{"negative capacity", 32, -1, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.bits, tt.capacity)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%d, %d) error = %v, wantErr %v", tt.bits, tt.capacity, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if s.Bits() != tt.bits || s.Capacity() != tt.capacity {
				t.Errorf("Bits, Capacity = %d, %d", s.Bits(), s.Capacity())
			}
			if got := s.SerializedSize(); got != tt.wantSize || len(s.Serialize()) != got {
				t.Errorf("SerializedSize = %d, len(Serialize) = %d, want %d", got, len(s.Serialize()), tt.wantSize)
			}
			if got, err := s.Decode(tt.capacity); err != nil || len(got) != 0 {
				t.Errorf("empty sketch decodes to %v, %v", got, err)
			}
		})
	}
}

// TestAddSemantics: 0 is ignored, values are taken modulo 2^bits, and adding
// twice removes.
func TestAddSemantics(t *testing.T) {
	tests := []struct {
		name  string
		bits  int
		elems []uint64
		want  []uint64 // the set the sketch must equal
	}{
		{"zero ignored", 16, []uint64{0, 5}, []uint64{5}},
		{"high bits dropped", 16, []uint64{0x10005, 7}, []uint64{5, 7}},
		{"multiple of 2^bits is zero", 16, []uint64{1 << 16, 9}, []uint64{9}},
		{"add twice removes", 32, []uint64{11, 12, 11}, []uint64{12}},
		{"truncated duplicate removes", 8, []uint64{0x1ff, 0xff}, nil},
		{"64-bit keeps all bits", 64, []uint64{math.MaxUint64, 1 << 63}, []uint64{math.MaxUint64, 1 << 63}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sketchOf(t, tt.bits, 4, tt.elems)
			want := sketchOf(t, tt.bits, 4, tt.want)
			if !bytes.Equal(s.Serialize(), want.Serialize()) {
				t.Errorf("sketch of %x differs from sketch of %x", tt.elems, tt.want)
			}
			got, err := s.Decode(4)
			if err != nil || !sameSet(got, tt.want) {
				t.Errorf("Decode = %x, %v; want %x", got, err, tt.want)
			}
		})
	}
}

// TestDecodeUpToCapacity decodes random sets of every size from 0 to the
// capacity exactly.
func TestDecodeUpToCapacity(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, bits := range []int{2, 3, 8, 12, 32, 33, 64} {
		for _, capacity := range []int{1, 2, 10, 100} {
			f := newField(bits)
			if uint64(capacity) > f.mask {
				continue // not enough distinct nonzero elements
			}
			if bits < 12 && capacity == 100 {
				continue
			}
			t.Run(fmt.Sprintf("b=%d/c=%d", bits, capacity), func(t *testing.T) {
				for n := 0; n <= capacity; n++ {
					elems := distinctNonzero(rng, &f, n)
					s := sketchOf(t, bits, capacity, elems)
					s.SetSeed(rng.Uint64())
					got, err := s.Decode(capacity)
					if err != nil {
						t.Fatalf("n=%d: %v", n, err)
					}
					want := slices.Sorted(slices.Values(elems))
					if !slices.Equal(got, want) {
						t.Fatalf("n=%d: Decode = %x, want %x", n, got, want)
					}
					if n > 0 {
						if _, err := s.Decode(n - 1); !errors.Is(err, ErrDecodeFailed) {
							t.Fatalf("n=%d: Decode(%d) err = %v, want ErrDecodeFailed", n, n-1, err)
						}
					}
				}
			})
		}
	}
}

// TestDecodeSeedIndependent decodes one sketch with many root-finder seeds.
func TestDecodeSeedIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	f := newField(64)
	elems := distinctNonzero(rng, &f, 40)
	s := sketchOf(t, 64, 40, elems)
	want := slices.Sorted(slices.Values(elems))
	for seed := range uint64(20) {
		s.SetSeed(seed)
		got, err := s.Decode(40)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("seed %d: Decode = %x, %v", seed, got, err)
		}
	}
}

// wrongDecodeProb returns Σ_{k≤m} C(2^b−1, k) / 2^(b·c): the probability that
// a uniformly random sketch of capacity c is the sketch of some set of at
// most m elements, the only sketches that Decode(m) accepts.
func wrongDecodeProb(b, c, m int) float64 {
	n := math.Exp2(float64(b)) - 1
	sum, term := 0.0, 1.0
	for k := 0; k <= m; k++ {
		sum += term
		term *= (n - float64(k)) / float64(k+1)
	}
	return sum / math.Exp2(float64(b*c))
}

// TestDecodeBeyondCapacity adds more elements than the capacity. Decode must
// return ErrDecodeFailed, except with the probability of a random sketch
// being the sketch of a set of at most max elements, p = Σ_{k≤max}
// C(2^b−1, k)/2^(b·c) (the bound behind ComputeCapacity). Whatever Decode
// returns must be a set whose sketch is the input sketch. The observed rate
// of wrong decodes must lie within 5 standard deviations of p (the seeds are
// fixed, so the outcome is deterministic).
func TestDecodeBeyondCapacity(t *testing.T) {
	tests := []struct {
		bits, capacity, max, elems, trials int
	}{
		{8, 4, 4, 12, 20000},   // p ≈ 2^−4.6 (C(255, 4)/2^32)
		{16, 3, 3, 8, 20000},   // p ≈ 1/3!
		{32, 4, 4, 9, 20000},   // p ≈ 1/4! ≈ 2^−4.6
		{32, 6, 6, 10, 20000},  // p ≈ 1/6! ≈ 2^−9.5
		{12, 3, 2, 7, 20000},   // p ≈ 2^−13: decoding for fewer than the capacity
		{64, 10, 10, 11, 1000}, // p ≈ 1/10! ≈ 2^−21.8
		{32, 5, 4, 8, 5000},    // ComputeCapacity(32, 4, 16) = 5: p ≈ 2^−36.6
	}
	rng := rand.New(rand.NewPCG(15, 16))
	for _, tt := range tests {
		name := fmt.Sprintf("b=%d/c=%d/max=%d/n=%d", tt.bits, tt.capacity, tt.max, tt.elems)
		t.Run(name, func(t *testing.T) {
			f := newField(tt.bits)
			wrong := 0
			for range tt.trials {
				elems := distinctNonzero(rng, &f, tt.elems)
				s := sketchOf(t, tt.bits, tt.capacity, elems)
				got, err := s.Decode(tt.max)
				if errors.Is(err, ErrDecodeFailed) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				wrong++
				if len(got) > tt.max || sameSet(got, elems) {
					t.Fatalf("Decode returned %x for a set of %d elements", got, tt.elems)
				}
				if re := sketchOf(t, tt.bits, tt.capacity, got); !bytes.Equal(re.Serialize(), s.Serialize()) {
					t.Fatalf("decoded set %x does not re-create the sketch", got)
				}
			}
			p := wrongDecodeProb(tt.bits, tt.capacity, tt.max)
			mean := p * float64(tt.trials)
			sd := math.Sqrt(float64(tt.trials) * p * (1 - p))
			t.Logf("wrong decodes %d/%d (%.5f), bound p = %.3g", wrong, tt.trials, float64(wrong)/float64(tt.trials), p)
			if math.Abs(float64(wrong)-mean) > 5*sd+0.5 {
				t.Errorf("wrong decodes %d/%d, expected %.1f ± %.1f (p = %.3g)", wrong, tt.trials, mean, sd, p)
			}
		})
	}
}

func TestDecodeNegativeMax(t *testing.T) {
	s := sketchOf(t, 32, 4, []uint64{1})
	if _, err := s.Decode(-1); err == nil || errors.Is(err, ErrDecodeFailed) {
		t.Errorf("Decode(-1) err = %v, want an argument error", err)
	}
}

// TestDecodeAboveCapacityIsCapped: maxElements above the capacity behaves as
// the capacity.
func TestDecodeAboveCapacityIsCapped(t *testing.T) {
	s := sketchOf(t, 32, 2, []uint64{1, 2})
	got, err := s.Decode(100)
	if err != nil || !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("Decode(100) = %v, %v", got, err)
	}
	s.Add(3)
	if got, err := s.Decode(100); !errors.Is(err, ErrDecodeFailed) {
		t.Errorf("Decode(100) of 3 elements at capacity 2 = %v, %v; want ErrDecodeFailed", got, err)
	}
}

// TestMerge: merging gives the sketch of the symmetric difference.
func TestMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, bits := range []int{12, 32, 64} {
		f := newField(bits)
		all := distinctNonzero(rng, &f, 60)
		a, b := all[:40], all[20:] // share all[20:40]
		sa, sb := sketchOf(t, bits, 45, a), sketchOf(t, bits, 45, b)
		before := sb.Serialize()
		if err := sa.Merge(sb); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sb.Serialize(), before) {
			t.Errorf("b=%d: Merge modified its argument", bits)
		}
		want := append(slices.Clone(all[:20]), all[40:]...)
		if direct := sketchOf(t, bits, 45, want); !bytes.Equal(sa.Serialize(), direct.Serialize()) {
			t.Errorf("b=%d: merged sketch differs from the sketch of the symmetric difference", bits)
		}
		got, err := sa.Decode(45)
		if err != nil || !sameSet(got, want) {
			t.Errorf("b=%d: Decode(merged) = %x, %v; want %x", bits, got, err, want)
		}
		// XOR of serializations is the serialization of the merge.
		x := sketchOf(t, bits, 45, a).Serialize()
		for i, v := range sb.Serialize() {
			x[i] ^= v
		}
		if !bytes.Equal(x, sa.Serialize()) {
			t.Errorf("b=%d: XOR of serializations differs from Merge", bits)
		}
	}
}

func TestMergeCapacities(t *testing.T) {
	big := sketchOf(t, 32, 10, []uint64{1, 2, 3})
	small := sketchOf(t, 32, 4, []uint64{3, 4})
	if err := big.Merge(small); err != nil {
		t.Fatal(err)
	}
	if big.Capacity() != 4 {
		t.Fatalf("capacity after merging a capacity-4 sketch = %d, want 4", big.Capacity())
	}
	if got, err := big.Decode(4); err != nil || !slices.Equal(got, []uint64{1, 2, 4}) {
		t.Errorf("Decode = %v, %v; want [1 2 4]", got, err)
	}
	small = sketchOf(t, 32, 4, []uint64{3, 4})
	if err := small.Merge(sketchOf(t, 32, 10, []uint64{1, 2, 3})); err != nil || small.Capacity() != 4 {
		t.Errorf("merging a larger sketch: capacity %d, err %v; want 4, nil", small.Capacity(), err)
	}
	other := mustNew(t, 64, 4)
	before := small.Serialize()
	if err := small.Merge(other); err == nil {
		t.Errorf("merging 64-bit into 32-bit sketch: no error")
	}
	if !bytes.Equal(small.Serialize(), before) {
		t.Errorf("failed merge modified the sketch")
	}
}

// TestExtension: a sketch of capacity c is a prefix of a larger-capacity
// sketch of the same set, which is what BIP-330 sketch extensions rely on.
func TestExtension(t *testing.T) {
	elems := []uint64{5, 6, 7, 8, 9, 10}
	small, large := sketchOf(t, 32, 4, elems), sketchOf(t, 32, 7, elems)
	if !bytes.HasPrefix(large.Serialize(), small.Serialize()) {
		t.Fatalf("capacity-4 sketch is not a prefix of the capacity-7 sketch")
	}
	if _, err := small.Decode(4); !errors.Is(err, ErrDecodeFailed) {
		t.Errorf("6 elements at capacity 4 decoded: %v", err)
	}
	ext := mustNew(t, 32, 7)
	if err := ext.Deserialize(append(small.Serialize(), large.Serialize()[small.SerializedSize():]...)); err != nil {
		t.Fatal(err)
	}
	if got, err := ext.Decode(7); err != nil || !sameSet(got, elems) {
		t.Errorf("extended sketch decodes to %v, %v", got, err)
	}
}

// TestSerializeRoundTrip round-trips random sketches of every element size and
// rejects inputs of the wrong length.
func TestSerializeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for bits := MinBits; bits <= MaxBits; bits++ {
		f := newField(bits)
		for _, capacity := range []int{1, 3, 8, 17} {
			s := mustNew(t, bits, capacity)
			for i := range s.syn {
				s.syn[i] = randElem(rng, &f)
			}
			b := s.Serialize()
			if len(b) != (bits*capacity+7)/8 {
				t.Fatalf("bits=%d capacity=%d: %d bytes", bits, capacity, len(b))
			}
			if pad := bits * capacity % 8; pad != 0 && b[len(b)-1]>>uint(pad) != 0 {
				t.Errorf("bits=%d capacity=%d: padding bits set in %x", bits, capacity, b)
			}
			d := mustNew(t, bits, capacity)
			if err := d.Deserialize(b); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.syn, s.syn) {
				t.Errorf("bits=%d capacity=%d: round trip %x, want %x", bits, capacity, d.syn, s.syn)
			}
			appended, _ := s.AppendBinary([]byte{0xaa})
			if !bytes.Equal(appended[1:], b) || appended[0] != 0xaa {
				t.Errorf("AppendBinary = %x, want aa%x", appended, b)
			}
			for _, n := range []int{0, len(b) - 1, len(b) + 1} {
				if err := d.Deserialize(make([]byte, n)); err == nil {
					t.Errorf("bits=%d capacity=%d: Deserialize of %d bytes accepted", bits, capacity, n)
				}
			}
		}
	}
}

// TestDeserializeIgnoresPadding matches libminisketch, which never reads the
// unused bits of the last byte.
func TestDeserializeIgnoresPadding(t *testing.T) {
	s := sketchOf(t, 12, 1, []uint64{0xabc})
	b := s.Serialize() // 2 bytes, 4 unused bits
	b[1] |= 0xf0
	d := mustNew(t, 12, 1)
	if err := d.Deserialize(b); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Decode(1); err != nil || !slices.Equal(got, []uint64{0xabc}) {
		t.Errorf("Decode = %x, %v", got, err)
	}
}

func TestClone(t *testing.T) {
	s := sketchOf(t, 32, 4, []uint64{1, 2})
	c := s.Clone()
	c.Add(3)
	if got, _ := s.Decode(4); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("adding to a clone changed the original: %v", got)
	}
	if got, _ := c.Decode(4); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("clone decodes to %v", got)
	}
}

// FuzzDeserializeDecode feeds arbitrary bytes to Deserialize and Decode. They
// must not panic; a sketch must round-trip through Serialize (with the unused
// bits of the last byte cleared); and a successful decode must re-create the
// sketch exactly.
func FuzzDeserializeDecode(f *testing.F) {
	f.Add(uint8(12), uint8(4), []byte{0x01, 0xe0, 0xd2, 0xf9, 0x74, 0x69})
	f.Add(uint8(12), uint8(4), []byte{0x00, 0x70, 0x53, 0xb2, 0xd9, 0xd1})
	f.Add(uint8(32), uint8(1), []byte{1, 0, 0, 0})
	f.Add(uint8(2), uint8(3), []byte{0x3f})
	f.Add(uint8(64), uint8(2), bytes.Repeat([]byte{0xff}, 16))
	f.Fuzz(func(t *testing.T, bits, capacity uint8, data []byte) {
		b := MinBits + int(bits)%(MaxBits-MinBits+1)
		c := 1 + int(capacity)%24
		s := mustNew(t, b, c)
		s.SetSeed(1)
		err := s.Deserialize(data)
		if len(data) != s.SerializedSize() {
			if err == nil {
				t.Fatalf("Deserialize accepted %d bytes, want %d", len(data), s.SerializedSize())
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(data)
		if pad := b * c % 8; pad != 0 {
			want[len(want)-1] &= byte(1)<<uint(pad) - 1
		}
		enc := s.Serialize()
		if !bytes.Equal(enc, want) {
			t.Fatalf("Serialize(Deserialize(%x)) = %x", data, enc)
		}
		again := mustNew(t, b, c)
		if err := again.Deserialize(enc); err != nil || !slices.Equal(again.syn, s.syn) {
			t.Fatalf("second round trip differs: %v", err)
		}
		got, err := s.Decode(c)
		if err != nil {
			if !errors.Is(err, ErrDecodeFailed) {
				t.Fatalf("Decode: %v", err)
			}
			return
		}
		if len(got) > c || !slices.IsSorted(got) {
			t.Fatalf("Decode = %x", got)
		}
		if re := sketchOf(t, b, c, got); !bytes.Equal(re.Serialize(), enc) {
			t.Fatalf("decoded %x does not re-create sketch %x", got, enc)
		}
	})
}
