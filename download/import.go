package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/lnsync/lnsync/gsp"
	"github.com/lnsync/lnsync/persistence"
)

// ImportPendingMax bounds the waiting room of an import: a file may hold
// updates long before the announcement of their channel, so messages wait
// until the end of the import rather than for PendingTimeout.
const ImportPendingMax = 1 << 20

// ImportStats describes one imported file.
type ImportStats struct {
	Messages  int64     // records read (receive-time records excluded)
	Skipped   gsp.Stats // what the resynchronising reader skipped or repaired
	FirstTime time.Time // clock at the first message
	LastTime  time.Time // clock at the last message
}

// clockWindow is how many timestamps on each side of a message the import
// clock looks at: the clock is the median of that window, so a single
// message with a wild timestamp cannot move it, while a real jump (two
// captures months apart in one file) moves it at the first message after
// the jump.
const clockWindow = 4

// ImportGSP feeds every message of a GSP v1 stream to v, resynchronising
// over framing glitches. The clock of the time rules, and the receive time
// stored, is the file's own: each record's receive time when the file
// carries one; otherwise the newest gossip timestamp of the file so far,
// where "newest" is robust: the running maximum of the median timestamp of
// the messages around (clockWindow on each side, read ahead). A capture is
// read in the order it was received, so this is the latest moment the
// capture provably reached, and a message stamped a week ahead of its
// neighbours is too_new as it would have been live. Messages without a
// timestamp (channel announcements) take the clock of the next message
// that has one. It returns once every message is queued; call v.Drain and,
// after the last file, v.ExpirePending.
func ImportGSP(ctx context.Context, v *Validator, r io.Reader, from *Source) (ImportStats, error) {
	rd := gsp.NewReader(r)
	rd.Resync = true
	var st ImportStats
	c := importClock{}
	emit := func(out []timedMsg) error {
		for _, m := range out {
			if st.FirstTime.IsZero() {
				st.FirstTime = m.at
			}
			st.LastTime = m.at
			if err := v.Submit(ctx, Message{Wire: m.wire, At: m.at, From: from}); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("read gsp: %w", err)
		}
		st.Messages++
		if err := emit(c.push(rec.Msg, rec.ReceivedAt)); err != nil {
			return st, err
		}
	}
	if err := emit(c.finish()); err != nil {
		return st, err
	}
	st.Skipped = rd.Skipped()
	return st, nil
}

type timedMsg struct {
	wire []byte
	at   time.Time // zero until decided
	ts   uint32    // gossip timestamp, 0 for none
	recv bool      // at is the file's receive time
}

// importClock assigns the import clock to messages, reading up to
// clockWindow timestamped messages ahead.
type importClock struct {
	queue   []timedMsg // read, not yet emitted
	history []uint32   // the last clockWindow decided timestamps
	clock   time.Time
}

// push adds a message and returns those whose clock is now decided.
func (c *importClock) push(wire []byte, received time.Time) []timedMsg {
	m := timedMsg{wire: wire, at: received, recv: !received.IsZero()}
	if !m.recv {
		m.ts = gossipTimestamp(wire)
	}
	c.queue = append(c.queue, m)
	return c.decide(false)
}

// finish decides and returns every queued message.
func (c *importClock) finish() []timedMsg { return c.decide(true) }

func (c *importClock) decide(atEOF bool) []timedMsg {
	var out []timedMsg
	for len(c.queue) > 0 {
		m := c.queue[0]
		switch {
		case m.recv:
		case m.ts != 0:
			var ahead []uint32
			for _, n := range c.queue[1:] {
				if n.ts != 0 {
					ahead = append(ahead, n.ts)
					if len(ahead) == clockWindow {
						break
					}
				}
			}
			if len(ahead) < clockWindow && !atEOF {
				return out
			}
			window := append(append(append([]uint32(nil), c.history...), m.ts), ahead...)
			slices.Sort(window)
			if t := time.Unix(int64(window[len(window)/2]), 0).UTC(); t.After(c.clock) {
				c.clock = t
			}
			c.history = append(c.history, m.ts)
			if len(c.history) > clockWindow {
				c.history = c.history[1:]
			}
			m.at = c.clock
		default:
			// No timestamp: the clock of the next timestamped message.
			next := -1
			for i, n := range c.queue[1:] {
				if n.ts != 0 {
					next = i + 1
					break
				}
			}
			if next < 0 && !atEOF {
				return out
			}
			if next > 0 {
				// Decide the next timestamped message first.
				sub := c.queue[:next]
				c.queue = c.queue[next:]
				decided := c.decide(atEOF)
				if len(decided) == 0 {
					c.queue = append(sub, c.queue...)
					return out
				}
				for i := range sub {
					if !sub[i].recv {
						sub[i].at = decided[0].at
					}
				}
				out = append(append(out, sub...), decided...)
				continue
			}
			m.at = c.clock
			if m.at.IsZero() {
				// Nothing in the file carries a time: the wall clock.
				m.at = time.Now().UTC()
			}
		}
		out = append(out, m)
		c.queue = c.queue[1:]
	}
	return out
}

// gossipTimestamp reads the timestamp field of a channel update or node
// announcement without decoding the rest, or returns 0.
func gossipTimestamp(wire []byte) uint32 {
	if len(wire) < 2 {
		return 0
	}
	be32 := func(off int) uint32 {
		if off+4 > len(wire) {
			return 0
		}
		return uint32(wire[off])<<24 | uint32(wire[off+1])<<16 | uint32(wire[off+2])<<8 | uint32(wire[off+3])
	}
	switch uint16(wire[0])<<8 | uint16(wire[1]) {
	case msgChannelUpdate:
		return be32(2 + 64 + 32 + 8)
	case msgNodeAnnouncement:
		f, err := sizedField(wire, signedFromSingleSig)
		if err != nil {
			return 0
		}
		return be32(signedFromSingleSig + 2 + len(f))
	}
	return 0
}

// ImportConfig configures ImportFiles.
type ImportConfig struct {
	ChainHash   [32]byte // the network's chain_hash, wire byte order
	FundingREST string   // optional funding output check (ValidatorConfig)
}

// FileReport is what ImportFiles did with one file.
type FileReport struct {
	Path  string
	Stats ImportStats
}

// ImportReport is the outcome of ImportFiles.
type ImportReport struct {
	Files    []FileReport
	Verdicts Verdicts // over all files
	Channels int      // channels known at the end, stored ones included
}

// ImportFiles validates and stores the messages of GSP v1 files through the
// same path as live gossip: writer must keep receive times
// (persistence.WriterConfig.KeepReceiveTimes), so every row is seen at the
// file's clock. Channels already stored validate their updates; messages
// still waiting for their channel after the last file are stored in the
// database's waiting room (verdict waiting), unverified and never served,
// and validated at their own receive time when their channel's announcement
// is accepted by a later import or from a live peer. It returns when
// everything is committed. open opens one path
// (the caller decides about stdin and compression); the caller closes
// nothing.
func ImportFiles(ctx context.Context, cfg ImportConfig, store *persistence.Store, writer *persistence.Writer, logger *slog.Logger,
	paths []string, open func(string) (io.ReadCloser, error)) (*ImportReport, error) {
	v := NewValidator(ValidatorConfig{ChainHash: cfg.ChainHash, PendingMax: ImportPendingMax, PendingPerSource: ImportPendingMax, PendingTimeout: -1,
		FundingREST: cfg.FundingREST, Waiting: store, ParkWaiting: true, ImportedWaiting: true}, writer, logger)
	if _, err := v.LoadChannels(ctx, store); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	vctx, cancel := context.WithCancel(ctx)
	v.Start(vctx)
	defer func() {
		cancel()
		v.Stop()
	}()
	rep := &ImportReport{}
	src := &Source{}
	for _, path := range paths {
		st, err := importPath(ctx, v, src, path, open)
		if err != nil {
			return rep, fmt.Errorf("import %s: %w", path, err)
		}
		rep.Files = append(rep.Files, FileReport{Path: path, Stats: st})
		v.logger.Info("file read", "path", path, "messages", st.Messages, "skipped_bytes", st.Skipped.SkippedBytes,
			"resyncs", st.Skipped.Resyncs, "first", st.FirstTime, "last", st.LastTime)
	}
	if err := v.Drain(ctx); err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	if err := v.ExpirePending(ctx); err != nil {
		return rep, fmt.Errorf("import: keep messages waiting for their channel: %w", err)
	}
	if err := writer.Flush(ctx); err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	rep.Verdicts = v.Verdicts()
	rep.Channels = v.Channels()
	return rep, nil
}

func importPath(ctx context.Context, v *Validator, src *Source, path string, open func(string) (io.ReadCloser, error)) (ImportStats, error) {
	f, err := open(path)
	if err != nil {
		return ImportStats{}, err
	}
	defer f.Close()
	// A pipe or a terminal may block a read for ever: closing the file
	// ends it when the import is interrupted.
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	st, err := ImportGSP(ctx, v, f, src)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return st, err
	}
	// Finish this file before the next one starts its own clock.
	return st, v.Drain(ctx)
}
