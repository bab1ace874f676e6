package rgs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts
// survives decode -> encode -> decode with the same semantic content, with our
// encoder's output passing the current clients' checks and re-encoding to the
// same bytes.
func FuzzDecode(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "vectors", "*.bin"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed vectors: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Decode(b)
		if err != nil {
			return
		}
		d := file.Delta()
		out, err := d.Encode(file.Version)
		if err != nil {
			// Content the encoder refuses on purpose: entries a current
			// client would reject as a whole, or that are not in canonical order.
			for _, ok := range []error{ErrNodeOrder, ErrDuplicate, ErrUnsorted} {
				if errors.Is(err, ok) {
					return
				}
			}
			t.Fatalf("Encode of decoded content: %v", err)
		}
		file2, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode of our own encoding: %v\n%x", err, out)
		}
		if err := file2.Validate(&d.ChainHash, 0); err != nil {
			t.Fatalf("Validate of our own encoding: %v", err)
		}
		d2 := file2.Delta()
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", d, d2)
		}
		out2, err := d2.Encode(file.Version)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("re-encoding differs (%v)", err)
		}
	})
}
