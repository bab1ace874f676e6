package sketch

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

var benchCapacities = []int{16, 64, 256, 1024, 4096}

// BenchmarkAdd measures adding one element to a sketch of each capacity.
func BenchmarkAdd(b *testing.B) {
	for _, bits := range []int{32, 64} {
		for _, c := range benchCapacities {
			b.Run(fmt.Sprintf("b=%d/c=%d", bits, c), func(b *testing.B) {
				s := mustNew(b, bits, c)
				x := uint64(0x9e3779b97f4a7c15)
				for b.Loop() {
					x = x*6364136223846793005 + 1442695040888963407
					s.Add(x)
				}
			})
		}
	}
}

// BenchmarkDecode measures decoding a sketch that holds as many elements as
// its capacity, the most expensive successful decode.
func BenchmarkDecode(b *testing.B) {
	for _, bits := range []int{32, 64} {
		for _, c := range benchCapacities {
			b.Run(fmt.Sprintf("b=%d/c=%d", bits, c), func(b *testing.B) {
				f := newField(bits)
				rng := rand.New(rand.NewPCG(uint64(bits), uint64(c)))
				s := sketchOf(b, bits, c, distinctNonzero(rng, &f, c))
				s.SetSeed(1)
				for b.Loop() {
					got, err := s.Decode(c)
					if err != nil || len(got) != c {
						b.Fatalf("Decode: %d elements, %v", len(got), err)
					}
				}
			})
		}
	}
}

// BenchmarkMerge measures merging two sketches of each capacity.
func BenchmarkMerge(b *testing.B) {
	for _, bits := range []int{32, 64} {
		for _, c := range benchCapacities {
			b.Run(fmt.Sprintf("b=%d/c=%d", bits, c), func(b *testing.B) {
				s, o := mustNew(b, bits, c), mustNew(b, bits, c)
				o.Add(12345)
				for b.Loop() {
					if err := s.Merge(o); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSerialize measures serializing and deserializing sketches of each
// capacity.
func BenchmarkSerialize(b *testing.B) {
	for _, bits := range []int{32, 64} {
		for _, c := range benchCapacities {
			s := mustNew(b, bits, c)
			for i := range c {
				s.Add(uint64(i) + 1)
			}
			b.Run(fmt.Sprintf("b=%d/c=%d", bits, c), func(b *testing.B) {
				b.SetBytes(int64(s.SerializedSize()))
				for b.Loop() {
					_ = s.Serialize()
				}
			})
			b.Run(fmt.Sprintf("b=%d/c=%d/deserialize", bits, c), func(b *testing.B) {
				data := s.Serialize()
				d := mustNew(b, bits, c)
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if err := d.Deserialize(data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
