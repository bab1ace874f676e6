package lookup_test

import (
	"testing"
	"time"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/rgs"
)

func TestBucketsDue(t *testing.T) {
	count := func(due [lookup.ReminderBuckets]bool) int {
		n := 0
		for _, d := range due {
			if d {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name       string
		last, ref  time.Time
		wantDueCnt int
	}{
		{"full delta", time.Time{}, epoch, 0},
		{"3h ending on a 6h boundary", epoch.Add(-3 * hour), epoch, 1},
		{"3h ending between boundaries", epoch, epoch.Add(3 * hour), 0},
		{"24h", epoch.Add(-day), epoch, 4},
		// 8 due in the window, and the 4 whose last reminder may expire on
		// the client (7 days after it) before a sync 48 h (+3 h) later.
		{"48h", epoch.Add(-2 * day), epoch, 12},
		{"45h", epoch.Add(-45 * hour), epoch, 12},
		{"96h", epoch.Add(-96 * hour), epoch, 24},
		{"6 days", epoch.Add(-6 * day), epoch, 24},
		{"20 days", epoch.Add(-20 * day), epoch, 24},
	}
	for _, tt := range tests {
		if got := count(lookup.BucketsDue(tt.last, tt.ref)); got != tt.wantDueCnt {
			t.Errorf("%s: %d buckets due, want %d", tt.name, got, tt.wantDueCnt)
		}
	}
}

// TestRemindersKeepEveryCadenceFresh stores stable channels once and replays
// clients syncing every 3 h, 24 h, 48 h and 6 days: after each sync every
// channel must have been touched (announced, updated or reminded) within the
// last 6 days, so LDK's 7-day lifetime of backdated data never expires it; the
// 3-hourly client gets each channel's reminder exactly once per 6-day cycle.
func TestRemindersKeepEveryCadenceFresh(t *testing.T) {
	f := newFixture(t)
	start := epoch
	stored := start.Add(-day)
	const channels = 240
	var ids []uint64
	buckets := map[int]bool{}
	for i := range channels {
		id := scid(810000+uint64(i), uint64(i%3))
		ids = append(ids, id)
		buckets[lookup.ChannelBucket(id)] = true
		f.announce(id, 1+byte(i%50), 60+byte(i%50), stored)
		f.update(id, upd{dir: 0, ts: stored, seen: stored, fee: 1})
		f.update(id, upd{dir: 1, ts: stored, seen: stored, fee: 2, disabled: i%10 == 0})
	}
	if len(buckets) != lookup.ReminderBuckets {
		t.Fatalf("channels cover %d of %d buckets", len(buckets), lookup.ReminderBuckets)
	}
	span := 6 * day
	for _, cadence := range []time.Duration{3 * hour, day, 2 * day, 6 * day} {
		t.Run(cadence.String(), func(t *testing.T) {
			f := f.with(t)
			touched := map[uint64]time.Time{}
			reminders := map[uint64]int{}
			d, _ := f.delta(time.Time{}, start)
			for _, a := range d.Announcements {
				touched[a.SCID] = start
			}
			last := start
			for now := start.Add(cadence); !now.After(start.Add(span)); now = now.Add(cadence) {
				d, st := f.delta(last, now)
				if st.Full+st.Incremental != 0 || len(d.Announcements) != 0 {
					t.Fatalf("stable history produced changes at %v: %+v", now, st)
				}
				for _, u := range d.Updates {
					if u.Kind != rgs.Reminder {
						t.Fatalf("non-reminder %+v", u)
					}
					if u.Disabled != (u.Direction == 1 && (u.SCID>>40-810000)%10 == 0) {
						t.Errorf("reminder %+v carries the wrong disable bit", u)
					}
					touched[u.SCID] = now
					reminders[u.SCID]++
				}
				for _, id := range ids {
					if age := now.Sub(touched[id]); age > 6*day {
						t.Fatalf("cadence %v: at %v channel %x last touched %v ago", cadence, now, id, age)
					}
				}
				last = now
			}
			if cadence == 3*hour {
				for _, id := range ids {
					if reminders[id] != 2 {
						t.Errorf("channel %x got %d reminders in 6 days, want one per direction", id, reminders[id])
					}
				}
			}
		})
	}
}

// TestReminderOnlyDeltaHasHeader checks the reference server's defect of a
// zero header on deltas without channel changes.
func TestReminderOnlyDeltaHasHeader(t *testing.T) {
	f := newFixture(t)
	id := scid(800000, 20)
	stored := epoch.Add(-7 * day)
	f.announce(id, 1, 2, stored)
	f.update(id, upd{dir: 0, ts: stored, seen: stored})
	f.update(id, upd{dir: 1, ts: stored, seen: stored})
	d, st := f.delta(epoch.Add(-6*day), epoch)
	if st.Reminders != 2 || d.Timestamp != uint32(epoch.Unix()) {
		t.Errorf("reminders %d, header %d; want 2 and %d", st.Reminders, d.Timestamp, epoch.Unix())
	}
}
