package gsp

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// BenchmarkReader measures reading the merged archive (28,813 messages)
// from memory in both modes.
func BenchmarkReader(b *testing.B) {
	data, err := os.ReadFile(mergedGSP)
	if err != nil {
		b.Fatal(err)
	}
	for _, resync := range []bool{false, true} {
		name := "strict"
		if resync {
			name = "resync"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				r := NewReader(bytes.NewReader(data))
				r.Resync = resync
				for {
					if _, err := r.Next(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
