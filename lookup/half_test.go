package lookup

import (
	"testing"
	"time"
)

// halfRun is how a model of LDK's client fared with one half channel.
type halfRun struct {
	sent    int           // files that carried the channel
	share   float64       // time held after the first 21 days
	longest time.Duration // longest time without it after the first 21 days
}

// followHalfChannel follows one half channel, announced at anchor, through
// 120 days of syncs every cadence from a first full sync some hours later,
// with a model of LDK's client: a channel it already holds is ignored; it
// drops the channel once the header of the file that added it is
// ClientRecordLife old, right after applying a file (LDK prunes then) and,
// when hourly is set, also at an hourly prune between syncs (a client that
// runs all the time). due decides which files carry the channel.
func followHalfChannel(anchor time.Time, cadence time.Duration, hourly bool, due func(l, c time.Time) bool) halfRun {
	const apply = 10 * time.Minute // a file is applied this long after its reference time
	first := anchor.Truncate(3 * time.Hour).Add(30 * time.Hour)
	steady := first.Add(21 * 24 * time.Hour)
	end := first.Add(120 * 24 * time.Hour)
	var r halfRun
	var added, gapStart, last time.Time
	var without time.Duration
	held := false
	drop := func(at time.Time) {
		held, gapStart = false, at
	}
	for c := first; c.Before(end); c = c.Add(cadence) {
		if tick := added.Add(ClientRecordLife).Truncate(time.Hour).Add(time.Hour); hourly && held && tick.Before(c) {
			drop(tick)
		}
		if last.IsZero() || due(last, c) {
			r.sent++
			if !held {
				held, added = true, c
				if !gapStart.IsZero() && gapStart.After(steady) {
					gap := c.Add(apply).Sub(gapStart)
					r.longest = max(r.longest, gap)
					without += gap
				}
			}
		}
		if held && c.Add(apply).After(added.Add(ClientRecordLife)) {
			drop(c.Add(apply))
		}
		last = c
	}
	if !held {
		from := gapStart
		if from.Before(steady) {
			from = steady
		}
		gap := end.Sub(from)
		r.longest = max(r.longest, gap)
		without += gap
	}
	r.share = 1 - float64(without)/float64(end.Sub(steady))
	return r
}

// TestHalfChannelSchedule compares the repeat schedule of half channels
// with the best any server can do for an LDK client (send them in every
// file) and with sending them only when new (as the reference server
// does): at every cadence up to 6 days, for clients that prune hourly and
// for clients that prune only when they sync, it keeps the channel on the
// client within 3 points of the best, never leaves it without the channel
// for longer than one repeat step and two sync periods, and sends it in
// fewer files.
func TestHalfChannelSchedule(t *testing.T) {
	anchor := time.Date(2026, 1, 3, 7, 12, 0, 0, time.UTC)
	always := func(l, c time.Time) bool { return true }
	whenNew := func(l, c time.Time) bool { return false }
	schedule := func(l, c time.Time) bool { return halfChannelDue(anchor.UnixMicro(), l.UnixMicro(), c.UnixMicro()) }
	for _, cadence := range []time.Duration{3 * time.Hour, 6 * time.Hour, 24 * time.Hour, 45 * time.Hour, 48 * time.Hour, 87 * time.Hour, 96 * time.Hour, 6 * 24 * time.Hour} {
		for _, hourly := range []bool{true, false} {
			best := followHalfChannel(anchor, cadence, hourly, always)
			once := followHalfChannel(anchor, cadence, hourly, whenNew)
			got := followHalfChannel(anchor, cadence, hourly, schedule)
			life := (ClientRecordLife + HalfChannelSlack).Microseconds()
			p := cadence.Microseconds()
			step := time.Duration((life/p+1)*p/HalfChannelPhases) * time.Microsecond
			t.Logf("every %v, hourly prune %v: held %.1f%% (every file: %.1f%%, only when new: %.1f%%), in %d of %d files, longest gap %v",
				cadence, hourly, 100*got.share, 100*best.share, 100*once.share, got.sent, best.sent, got.longest)
			if got.share < best.share-0.03 {
				t.Errorf("every %v, hourly prune %v: held %.1f%% of the time, best %.1f%%", cadence, hourly, 100*got.share, 100*best.share)
			}
			if got.longest > step+2*cadence {
				t.Errorf("every %v, hourly prune %v: without the channel for %v at once, more than one step (%v) and two sync periods", cadence, hourly, got.longest, step)
			}
			if got.sent >= best.sent && cadence < step {
				t.Errorf("every %v: sent in %d of %d files", cadence, got.sent, best.sent)
			}
		}
	}
}

// TestHalfChannelFirstMonth follows a client's first 28 days from a full
// sync at 56 different times after a half channel was announced: averaged
// over them, the client holds the channel within 4 points of the best any
// server can do (send it in every file).
func TestHalfChannelFirstMonth(t *testing.T) {
	anchor := time.Date(2026, 1, 3, 7, 12, 0, 0, time.UTC)
	for _, cadence := range []time.Duration{3 * time.Hour, 24 * time.Hour, 48 * time.Hour, 96 * time.Hour} {
		for _, hourly := range []bool{true, false} {
			tot, totBest := 0.0, 0.0
			n := 0
			for off := 0; off < 56; off++ {
				first := anchor.Truncate(3 * time.Hour).Add(time.Duration(off) * 3 * time.Hour * 7)
				due := func(l, c time.Time) bool { return halfChannelDue(anchor.UnixMicro(), l.UnixMicro(), c.UnixMicro()) }
				tot += heldFrom(first, cadence, hourly, due)
				totBest += heldFrom(first, cadence, hourly, func(l, c time.Time) bool { return true })
				n++
			}
			t.Logf("every %v, hourly prune %v: held %.1f%% of its first 28 days (every file: %.1f%%)", cadence, hourly, 100*tot/float64(n), 100*totBest/float64(n))
			if tot < totBest-0.04*float64(n) {
				t.Errorf("every %v, hourly prune %v: held %.1f%% of the first 28 days, best %.1f%%", cadence, hourly, 100*tot/float64(n), 100*totBest/float64(n))
			}
		}
	}
}

// heldFrom is the share of the 28 days from a full sync at first that a
// model of LDK's client (see followHalfChannel) holds a half channel.
func heldFrom(first time.Time, cadence time.Duration, hourly bool, due func(l, c time.Time) bool) float64 {
	const apply = 10 * time.Minute
	end := first.Add(28 * 24 * time.Hour)
	var added, gapStart, last time.Time
	var without time.Duration
	held := false
	for c := first; c.Before(end); c = c.Add(cadence) {
		if tick := added.Add(ClientRecordLife).Truncate(time.Hour).Add(time.Hour); hourly && held && tick.Before(c) {
			held, gapStart = false, tick
		}
		if last.IsZero() || due(last, c) {
			if !held {
				held, added = true, c
				if !gapStart.IsZero() {
					without += c.Add(apply).Sub(gapStart)
				}
			}
		}
		if held && c.Add(apply).After(added.Add(ClientRecordLife)) {
			held, gapStart = false, c.Add(apply)
		}
		last = c
	}
	if !held {
		without += end.Sub(gapStart)
	}
	return 1 - float64(without)/float64(end.Sub(first))
}
