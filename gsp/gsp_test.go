package gsp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

const (
	mergedGSP   = "../testdata/lnresearch-gsp-2025/lnresearch-2025-merged.gsp"
	mergedIndex = "../testdata/lnresearch-gsp-2025/lnresearch-2025-merged.index.csv.gz"
)

// indexRow is one row of the merged file's index CSV.
type indexRow struct {
	typ    uint16
	length int
	sha    string
}

func readIndex(t *testing.T) []indexRow {
	t.Helper()
	f, err := os.Open(mergedIndex)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(zr)
	head, err := cr.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	var rows []indexRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		typ, _ := strconv.Atoi(rec[col["type"]])
		n, _ := strconv.Atoi(rec[col["len"]])
		rows = append(rows, indexRow{uint16(typ), n, rec[col["sha256"]]})
	}
	return rows
}

func TestReadMergedArchive(t *testing.T) {
	index := readIndex(t)
	if len(index) != 28813 {
		t.Fatalf("index has %d rows, want 28813", len(index))
	}
	for _, resync := range []bool{false, true} {
		t.Run("resync="+strconv.FormatBool(resync), func(t *testing.T) {
			f, err := os.Open(mergedGSP)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := NewReader(f)
			r.Resync = resync
			counts := map[uint16]int{}
			i := 0
			for ; ; i++ {
				rec, err := r.Next()
				if err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				counts[rec.Type]++
				if i >= len(index) {
					continue
				}
				want := index[i]
				sum := sha256.Sum256(rec.Msg)
				if rec.Type != want.typ || len(rec.Msg) != want.length || hex.EncodeToString(sum[:]) != want.sha {
					t.Fatalf("record %d: got type %d len %d, index says type %d len %d sha %s",
						i, rec.Type, len(rec.Msg), want.typ, want.length, want.sha)
				}
				if !rec.ReceivedAt.IsZero() {
					t.Fatalf("record %d has a receive time, the archive carries none", i)
				}
			}
			if i != len(index) {
				t.Errorf("read %d records, index has %d", i, len(index))
			}
			want := map[uint16]int{TypeChannelAnnouncement: 27, TypeNodeAnnouncement: 2251, TypeChannelUpdate: 26535}
			for typ, n := range want {
				if counts[typ] != n {
					t.Errorf("type %d: %d records, want %d", typ, counts[typ], n)
				}
			}
			if s := r.Skipped(); s != (Stats{}) {
				t.Errorf("clean archive reported skips: %+v", s)
			}
		})
	}
}

// sampleMessages returns the first n messages of the merged archive.
func sampleMessages(t testing.TB, n int) [][]byte {
	t.Helper()
	f, err := os.Open(mergedGSP)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(bufio.NewReader(f))
	// One message of each type first, then the following ones in order.
	var msgs, rest [][]byte
	types := map[uint16]bool{}
	for len(types) < 3 || len(rest) < n {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !types[rec.Type] {
			types[rec.Type] = true
			msgs = append(msgs, rec.Msg)
		} else {
			rest = append(rest, rec.Msg)
		}
	}
	msgs = append(msgs, rest...)[:n]
	return msgs
}

func frame(msg []byte) []byte { return append(putBigSize(nil, uint64(len(msg))), msg...) }

func TestResyncGlitches(t *testing.T) {
	msgs := sampleMessages(t, 6)
	clean := func(f func(i int, fr []byte) []byte) []byte {
		b := append([]byte(nil), Header[:]...)
		for i, m := range msgs {
			b = append(b, f(i, frame(m))...)
		}
		return b
	}
	tests := []struct {
		name      string
		stream    []byte
		want      int // messages the resync reader must return
		skipped   int64
		resyncs   int
		recovered int
	}{
		{"clean", clean(func(_ int, fr []byte) []byte { return fr }), len(msgs), 0, 0, 0},
		{"stray byte", clean(func(i int, fr []byte) []byte {
			if i == 2 {
				return append([]byte{0x8a}, fr...)
			}
			return fr
		}), len(msgs), 1, 1, 0},
		{"stray bytes twice", clean(func(i int, fr []byte) []byte {
			if i == 1 || i == 4 {
				return append([]byte{0x01, 0x02}, fr...)
			}
			return fr
		}), len(msgs), 4, 2, 0},
		{"missing length byte", clean(func(i int, fr []byte) []byte {
			if i == 3 {
				_, hl, _ := bigSize(fr)
				return fr[hl:]
			}
			return fr
		}), len(msgs), 0, 1, 1},
		{"garbage tail", append(clean(func(_ int, fr []byte) []byte { return fr }), 0xfd, 0x00), len(msgs), 2, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.stream))
			r.Resync = true
			var got [][]byte
			for {
				rec, err := r.Next()
				if err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				got = append(got, rec.Msg)
			}
			if len(got) != tt.want {
				t.Fatalf("got %d messages, want %d", len(got), tt.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], msgs[i]) {
					t.Errorf("message %d differs from the original", i)
				}
			}
			want := Stats{SkippedBytes: tt.skipped, Resyncs: tt.resyncs, Recovered: tt.recovered}
			if s := r.Skipped(); s != want {
				t.Errorf("stats %+v, want %+v", s, want)
			}
			if tt.resyncs == 0 {
				return
			}
			strict := NewReader(bytes.NewReader(tt.stream))
			var err error
			for err == nil {
				_, err = strict.Next()
			}
			if !errors.Is(err, ErrFraming) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("strict reader ended with %v, want a framing error", err)
			}
		})
	}
}

func TestBadHeader(t *testing.T) {
	for _, in := range []string{"", "GSP", "GSP\x02", "XYZ\x01\x00"} {
		r := NewReader(bytes.NewReader([]byte(in)))
		if _, err := r.Next(); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%q: err %v, want ErrBadHeader", in, err)
		}
	}
}

func TestWriterReceiveTimes(t *testing.T) {
	msgs := sampleMessages(t, 5)
	t0 := time.Date(2024, 9, 22, 0, 0, 0, 123456000, time.UTC)
	times := []time.Time{t0, t0, t0.Add(time.Second), {}, t0.Add(2 * time.Hour)}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i, m := range msgs {
		if err := w.Write(m, times[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// Four time changes (t0, +1s, none, +2h) ⇒ four 11-byte time records.
	var plain int
	for _, m := range msgs {
		plain += len(frame(m))
	}
	if got, want := buf.Len(), 4+plain+4*11; got != want {
		t.Errorf("stream is %d bytes, want %d", got, want)
	}
	golden := filepath.Join("testdata", "receive_times.gsp")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("output differs from %s (run with -update after an intended change)", golden)
	}

	r := NewReader(bytes.NewReader(buf.Bytes()))
	for i := range msgs {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Msg, msgs[i]) || !rec.ReceivedAt.Equal(times[i]) {
			t.Errorf("record %d: time %v, want %v", i, rec.ReceivedAt, times[i])
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last record: %v, want io.EOF", err)
	}

	// A plain GSP v1 reader that skips unknown odd types sees the same
	// messages: every time record is a well-formed 10-byte odd-type record.
	b := buf.Bytes()[4:]
	var seen int
	for len(b) > 0 {
		n, hl, ok := bigSize(b)
		if !ok {
			t.Fatal("bad length")
		}
		typ := binary.BigEndian.Uint16(b[hl:])
		if typ == TypeReceiveTime {
			if n != 10 || typ%2 != 1 {
				t.Fatalf("time record of length %d", n)
			}
		} else {
			seen++
		}
		b = b[hl+int(n):]
	}
	if seen != len(msgs) {
		t.Errorf("plain scan saw %d messages, want %d", seen, len(msgs))
	}
}

func TestWriterRejects(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.Write([]byte{0xFF, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0}, time.Time{}); !errors.Is(err, ErrFraming) {
		t.Errorf("reserved type: err %v, want ErrFraming", err)
	}
	if err := w.Write([]byte{1}, time.Time{}); !errors.Is(err, ErrFraming) {
		t.Errorf("1-byte message: err %v, want ErrFraming", err)
	}
	if err := w.Write([]byte{1, 2, 3}, time.Unix(-5, 0)); err == nil {
		t.Error("accepted a receive time before 1970")
	}
	var buf bytes.Buffer
	if err := NewWriter(&buf).Flush(); err != nil || !bytes.Equal(buf.Bytes(), Header[:]) {
		t.Errorf("empty stream = %x, %v; want just the header", buf.Bytes(), err)
	}
}

func TestBigSize(t *testing.T) {
	for _, v := range []uint64{0, 0xFC, 0xFD, 0xFFFF, 0x10000, 0xFFFFFFFF, 0x100000000} {
		b := putBigSize(nil, v)
		got, n, ok := bigSize(b)
		if !ok || n != len(b) || got != v {
			t.Errorf("%d: decoded %d (%d bytes, ok=%v) from %x", v, got, n, ok, b)
		}
	}
	for _, b := range [][]byte{{0xFD, 0x00, 0xFC}, {0xFE, 0, 0, 0xFF, 0xFF}, {0xFD, 0x01}} {
		if _, _, ok := bigSize(b); ok {
			t.Errorf("%x: accepted a non-minimal or short BigSize", b)
		}
	}
}

// readAll decodes a stream in resync mode, returning all records.
func readAll(b []byte) ([]Record, error) {
	r := NewReader(bytes.NewReader(b))
	r.Resync = true
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs, nil
		} else if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
}

// FuzzReader checks that neither reader mode panics on arbitrary input,
// that the resync reader only returns plausible records, and that
// decode → encode → decode round trips.
func FuzzReader(f *testing.F) {
	msgs := sampleMessages(f, 3)
	var seed bytes.Buffer
	w := NewWriter(&seed)
	for i, m := range msgs {
		_ = w.Write(m, time.Unix(1726963200+int64(i), 0))
	}
	_ = w.Flush()
	f.Add(seed.Bytes())
	f.Add(append(append([]byte(nil), Header[:]...), 0x8a, 0x01, 0x02))
	f.Add(append(append([]byte(nil), Header[:]...), 0xFD, 0xFF, 0xFF))
	f.Fuzz(func(t *testing.T, in []byte) {
		strict := NewReader(bytes.NewReader(in))
		for {
			if _, err := strict.Next(); err != nil {
				break
			}
		}
		recs, err := readAll(in)
		if err != nil && !errors.Is(err, ErrBadHeader) {
			t.Fatalf("resync reader: %v", err)
		}
		var out bytes.Buffer
		w := NewWriter(&out)
		for _, rec := range recs {
			if !plausibleMessage(rec.Msg) {
				t.Fatalf("resync reader returned an implausible message %x", rec.Msg)
			}
			if err := w.Write(rec.Msg, rec.ReceivedAt); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		again, err := readAll(out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(recs) {
			t.Fatalf("round trip: %d records, want %d", len(again), len(recs))
		}
		for i := range recs {
			if again[i].Type != recs[i].Type || !bytes.Equal(again[i].Msg, recs[i].Msg) ||
				!again[i].ReceivedAt.Equal(recs[i].ReceivedAt) {
				t.Fatalf("round trip: record %d differs", i)
			}
		}
		if s := NewReader(bytes.NewReader(out.Bytes())); true {
			for range recs {
				if _, err := s.Next(); err != nil {
					t.Fatalf("strict reader rejects writer output: %v", err)
				}
			}
		}
	})
}

// FuzzWriter writes arbitrary messages with arbitrary receive times and
// checks that a strict reader returns them unchanged.
func FuzzWriter(f *testing.F) {
	f.Add([]byte{3, 1, 2, 0, 5, 1, 1, 1, 1, 1}, int64(1726963200123456), uint8(2))
	f.Add([]byte{}, int64(0), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, us int64, step uint8) {
		// Split in into messages: a length byte, then that many bytes.
		var msgs [][]byte
		for len(in) > 0 {
			n := int(in[0])
			in = in[1:]
			n = min(n, len(in))
			m := in[:n]
			in = in[n:]
			if len(m) < 2 || m[0] == 0xFF && m[1] == 0xFD {
				continue
			}
			msgs = append(msgs, m)
		}
		us = max(us, 0) % (1 << 55)
		var buf bytes.Buffer
		w := NewWriter(&buf)
		var times []time.Time
		for i, m := range msgs {
			var at time.Time
			if u := us + int64(i/int(step|1))*1000; u > 0 {
				at = time.UnixMicro(u).UTC()
			}
			times = append(times, at)
			if err := w.Write(m, at); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r := NewReader(&buf)
		for i, m := range msgs {
			rec, err := r.Next()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if !bytes.Equal(rec.Msg, m) || !rec.ReceivedAt.Equal(times[i]) || rec.Type != binary.BigEndian.Uint16(m) {
				t.Fatalf("message %d: got %x at %v, want %x at %v", i, rec.Msg, rec.ReceivedAt, m, times[i])
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("after the last message: %v", err)
		}
	})
}

func TestReadFile(t *testing.T) {
	path := filepath.Join("testdata", "receive_times.gsp")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []Record
	r := NewReader(bytes.NewReader(b))
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
	}
	var got []Record
	if err := ReadFile(path, func(rec Record) error { got = append(got, rec); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) < 2 {
		t.Fatalf("ReadFile gave %d records, a Reader %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Msg, want[i].Msg) || !got[i].ReceivedAt.Equal(want[i].ReceivedAt) {
			t.Fatalf("record %d differs", i)
		}
	}

	stop := errors.New("stop")
	n := 0
	if err := ReadFile(path, func(Record) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("fn's error: got %v after %d records, want it unchanged after 1", err, n)
	}
	bad := filepath.Join(t.TempDir(), "bad.gsp")
	if err := os.WriteFile(bad, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadFile(bad, func(Record) error { return nil }); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("truncated file: err %v, want one naming %s", err, bad)
	}
	if err := ReadFile(filepath.Join(t.TempDir(), "missing.gsp"), func(Record) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err %v", err)
	}
}
