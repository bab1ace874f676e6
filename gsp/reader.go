package gsp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// maxFrame is the longest framed record: a 3-byte BigSize and a maximal
// message. Lengths of 2^16 and above are never plausible.
const maxFrame = 3 + MaxMessageSize

// peekSize is how far a resynchronising reader looks ahead: one whole
// record plus the next record's length and type.
const peekSize = maxFrame + 3 + 2

// Stats counts what a resynchronising Reader had to skip or repair.
type Stats struct {
	// SkippedBytes is the number of bytes discarded while searching for
	// the next plausible record.
	SkippedBytes int64
	// Resyncs is the number of times the reader lost and regained the
	// record framing.
	Resyncs int
	// Recovered is the number of messages found without a length prefix
	// (a missing length byte) and returned anyway.
	Recovered int
}

// Reader reads records from a GSP v1 stream. It is not safe for concurrent
// use. Receive-time records are consumed and never returned.
type Reader struct {
	// Resync selects the resynchronising mode: instead of failing with
	// ErrFraming, the reader skips to the next plausible record and counts
	// the skip in Skipped. Set it before the first call to Next.
	Resync bool

	br      *bufio.Reader
	started bool
	offset  int64 // stream offset of the next unread byte
	recvAt  time.Time
	stats   Stats
	err     error // sticky error
}

// NewReader returns a strict Reader of r. The caller keeps ownership of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 2*peekSize)}
}

// Skipped returns what the reader has skipped and recovered so far. It is
// always zero for a strict reader.
func (r *Reader) Skipped() Stats { return r.stats }

// Next returns the next message. It returns io.EOF after the last one,
// ErrBadHeader if the stream is not GSP v1, and (strict mode) an error
// wrapping ErrFraming or io.ErrUnexpectedEOF on a damaged record. Errors
// are sticky.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
	}
	return rec, err
}

func (r *Reader) next() (Record, error) {
	if !r.started {
		var h [4]byte
		n, err := io.ReadFull(r.br, h[:])
		r.offset += int64(n)
		if err != nil || h != Header {
			return Record{}, ErrBadHeader
		}
		r.started = true
	}
	for {
		var msg []byte
		var err error
		if r.Resync {
			msg, err = r.nextResync()
		} else {
			msg, err = r.nextStrict()
		}
		if err != nil {
			return Record{}, err
		}
		t := binary.BigEndian.Uint16(msg)
		if t == TypeReceiveTime {
			r.setTime(msg)
			continue
		}
		return Record{Type: t, Msg: msg, ReceivedAt: r.recvAt}, nil
	}
}

func (r *Reader) setTime(msg []byte) {
	us := binary.BigEndian.Uint64(msg[2:])
	if us == 0 || us > 1<<62 {
		r.recvAt = time.Time{}
		return
	}
	r.recvAt = time.UnixMicro(int64(us)).UTC()
}

func (r *Reader) nextStrict() ([]byte, error) {
	start := r.offset
	var lb [9]byte
	b, err := r.br.ReadByte()
	if err == io.EOF {
		return nil, io.EOF
	} else if err != nil {
		return nil, err
	}
	lb[0] = b
	extra := 0
	switch b {
	case 0xFD:
		extra = 2
	case 0xFE:
		extra = 4
	case 0xFF:
		extra = 8
	}
	if _, err := io.ReadFull(r.br, lb[1:1+extra]); err != nil {
		return nil, fmt.Errorf("gsp: record at offset %d: %w", start, io.ErrUnexpectedEOF)
	}
	r.offset += int64(1 + extra)
	n, _, ok := bigSize(lb[:1+extra])
	if !ok || n < 2 || n > MaxMessageSize {
		return nil, fmt.Errorf("gsp: record at offset %d: length %d: %w", start, n, ErrFraming)
	}
	msg := make([]byte, n)
	got, err := io.ReadFull(r.br, msg)
	r.offset += int64(got)
	if err != nil {
		return nil, fmt.Errorf("gsp: record at offset %d: %w", start, io.ErrUnexpectedEOF)
	}
	if binary.BigEndian.Uint16(msg) == TypeReceiveTime && n != receiveTimeLen {
		return nil, fmt.Errorf("gsp: receive-time record at offset %d has length %d: %w", start, n, ErrFraming)
	}
	return msg, nil
}

func (r *Reader) nextResync() ([]byte, error) {
	skipped := int64(0)
	for {
		buf, err := r.br.Peek(peekSize)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		atEOF := err != nil
		if len(buf) == 0 {
			return nil, io.EOF
		}
		// In step, a structurally plausible record is taken as is;
		// while searching, the following header must fit as well.
		if hl, n, ok := plausibleFrame(buf, atEOF, skipped > 0); ok {
			msg := bytes.Clone(buf[hl : hl+n])
			r.discard(hl + n)
			r.endSkip(skipped, false)
			return msg, nil
		}
		// A message whose length prefix went missing starts right here.
		if n := unframedLen(buf, atEOF); n > 0 {
			msg := bytes.Clone(buf[:n])
			r.discard(n)
			r.endSkip(skipped, true)
			return msg, nil
		}
		r.discard(1)
		skipped++
		if atEOF && len(buf) == 1 {
			r.endSkip(skipped, false)
			return nil, io.EOF
		}
	}
}

func (r *Reader) discard(n int) {
	d, _ := r.br.Discard(n)
	r.offset += int64(d)
}

func (r *Reader) endSkip(skipped int64, recovered bool) {
	if recovered {
		r.stats.Recovered++
	}
	if skipped > 0 || recovered {
		r.stats.SkippedBytes += skipped
		r.stats.Resyncs++
	}
}

// plausibleFrame checks the framed record at the start of buf: a minimal
// BigSize length and a plausible message of that length; with lookahead,
// also the end of the stream or a plausible next record header right
// after it. It returns the length of the header and of the message.
func plausibleFrame(buf []byte, atEOF, lookahead bool) (hl, n int, ok bool) {
	v, hl, ok := bigSize(buf)
	if !ok || v < 2 || v > MaxMessageSize || hl+int(v) > len(buf) {
		return 0, 0, false
	}
	n = int(v)
	if !plausibleMessage(buf[hl : hl+n]) {
		return 0, 0, false
	}
	return hl, n, !lookahead || plausibleNext(buf[hl+n:], atEOF)
}

// unframedLen reports the length of a plausible message that starts at
// buf[0] without a length prefix and is followed by the end of the stream
// or a plausible record header; 0 if there is none.
func unframedLen(buf []byte, atEOF bool) int {
	n := exactLen(buf)
	if n <= 0 || n > MaxMessageSize || n > len(buf) {
		return 0
	}
	cands := []int{n}
	if binary.BigEndian.Uint16(buf) == TypeChannelUpdate {
		cands = append(cands, n+12) // inbound-fee TLV 55555
	}
	for _, c := range cands {
		if c <= len(buf) && plausibleMessage(buf[:c]) && plausibleNext(buf[c:], atEOF) {
			return c
		}
	}
	return 0
}

// plausibleNext checks that rest starts with a record header (length and
// type) that could belong to a plausible record. An empty rest is
// plausible only at the end of the stream; a rest too short to tell (a
// truncated tail) is accepted at the end of the stream.
func plausibleNext(rest []byte, atEOF bool) bool {
	if len(rest) == 0 {
		return atEOF
	}
	v, hl, ok := bigSize(rest)
	if !ok || len(rest) < hl+2 {
		return atEOF && len(rest) < 9+2
	}
	lo, known := minLen(binary.BigEndian.Uint16(rest[hl:]))
	if !known || v < uint64(lo) || v > MaxMessageSize {
		return false
	}
	if binary.BigEndian.Uint16(rest[hl:]) == TypeReceiveTime {
		return v == receiveTimeLen
	}
	return true
}

// ReadFile calls fn with every record of the GSP file at path, in order,
// through a strict Reader. It stops at the first error: fn's is returned
// as it is, a read error wrapped with the path.
func ReadFile(path string, fn func(Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := NewReader(f)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
