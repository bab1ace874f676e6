package gsp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Writer writes a GSP v1 stream with receive-time records. It buffers;
// call Flush when done. It is not safe for concurrent use. The caller keeps
// ownership of the underlying io.Writer.
type Writer struct {
	bw      *bufio.Writer
	started bool
	lastUS  uint64 // receive time of the last message in µs; 0 = none
	scratch []byte
	err     error // sticky error
}

// NewWriter returns a Writer to w. The header is written with the first
// message, or by Flush for an empty stream.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 1<<16)}
}

// Write appends one wire message (type included). A receive-time record
// precedes it when receivedAt differs from the previous message's; a zero
// receivedAt means "unknown". Times are kept to the microsecond and must
// lie after the unix epoch (0 encodes "unknown").
func (w *Writer) Write(msg []byte, receivedAt time.Time) error {
	if w.err != nil {
		return w.err
	}
	if len(msg) < 2 || len(msg) > MaxMessageSize {
		return fmt.Errorf("gsp: message of %d bytes: %w", len(msg), ErrFraming)
	}
	if binary.BigEndian.Uint16(msg) == TypeReceiveTime {
		return fmt.Errorf("gsp: message uses the reserved type %#x: %w", TypeReceiveTime, ErrFraming)
	}
	var us uint64
	if !receivedAt.IsZero() {
		m := receivedAt.UnixMicro()
		if m <= 0 {
			return fmt.Errorf("gsp: receive time %v is not after the unix epoch", receivedAt)
		}
		us = uint64(m)
	}
	b := w.scratch[:0]
	if !w.started {
		b = append(b, Header[:]...)
		w.started = true
	}
	if us != w.lastUS {
		b = append(b, receiveTimeLen)
		b = binary.BigEndian.AppendUint16(b, TypeReceiveTime)
		b = binary.BigEndian.AppendUint64(b, us)
		w.lastUS = us
	}
	b = putBigSize(b, uint64(len(msg)))
	w.scratch = b
	if _, err := w.bw.Write(b); err != nil {
		w.err = err
		return err
	}
	if _, err := w.bw.Write(msg); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Flush writes any buffered data (and the header of an empty stream) to
// the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if !w.started {
		if _, err := w.bw.Write(Header[:]); err != nil {
			w.err = err
			return err
		}
		w.started = true
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}
