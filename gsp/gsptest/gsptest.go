// Package gsptest reads GSP files in tests: every record of a file, through
// the resynchronising reader, failing the test on any other error.
package gsptest

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/lnsync/lnsync/gsp"
)

// Records returns every record of the GSP file at path, in file order.
func Records(t testing.TB, path string) []gsp.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := gsp.NewReader(f)
	r.Resync = true
	var out []gsp.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		out = append(out, rec)
	}
}

// Messages returns the wire bytes of every message of the GSP file at path.
func Messages(t testing.TB, path string) [][]byte {
	t.Helper()
	recs := Records(t, path)
	out := make([][]byte, len(recs))
	for i, rec := range recs {
		out[i] = rec.Msg
	}
	return out
}
