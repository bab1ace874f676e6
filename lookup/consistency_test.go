package lookup_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/rgs"
)

// clientState is what an RGS client holds for one channel direction.
type clientState struct {
	policy   rgs.Policy
	disabled bool
}

// clientModel applies deltas the way LDK does (announcements add unknown
// channels; full updates set every value; incremental updates set the listed
// values of a known direction; reminders refresh a known direction).
type clientModel map[uint64]*[2]*clientState

func (m clientModel) apply(d *rgs.Delta) {
	for _, a := range d.Announcements {
		if m[a.SCID] == nil {
			m[a.SCID] = &[2]*clientState{}
		}
	}
	for _, u := range d.Updates {
		ch := m[u.SCID]
		if ch == nil {
			continue
		}
		switch u.Kind {
		case rgs.Full:
			ch[u.Direction] = &clientState{policy: u.Policy, disabled: u.Disabled}
		case rgs.Incremental, rgs.Reminder:
			s := ch[u.Direction]
			if s == nil {
				continue
			}
			p := &s.policy
			if u.Changed&rgs.FieldCLTVExpiryDelta != 0 {
				p.CLTVExpiryDelta = u.Policy.CLTVExpiryDelta
			}
			if u.Changed&rgs.FieldHTLCMinimumMsat != 0 {
				p.HTLCMinimumMsat = u.Policy.HTLCMinimumMsat
			}
			if u.Changed&rgs.FieldFeeBaseMsat != 0 {
				p.FeeBaseMsat = u.Policy.FeeBaseMsat
			}
			if u.Changed&rgs.FieldFeeProportionalMillionths != 0 {
				p.FeeProportionalMillionths = u.Policy.FeeProportionalMillionths
			}
			if u.Changed&rgs.FieldHTLCMaximumMsat != 0 {
				p.HTLCMaximumMsat = u.Policy.HTLCMaximumMsat
			}
			s.disabled = u.Disabled
		}
	}
}

// TestNothingFallsBetweenDeltas writes live gossip from several producers
// while a client computes and applies deltas back to back (each delta starting
// where the previous ended). At the end the client must hold exactly what a
// fresh full delta holds: a row stored while a delta was computed is in that
// delta or in the next one.
func TestNothingFallsBetweenDeltas(t *testing.T) {
	t.Parallel()
	store := persistencetest.NewStore(t)
	ctx := context.Background()
	w := persistence.NewWriter(store, persistence.WriterConfig{BatchSize: 50, FlushInterval: 2 * time.Millisecond}, persistencetest.Logger(t))
	w.Start(ctx)
	defer w.Stop()
	index := lookup.NewIndex(store, rgs.ChainMainnet, persistencetest.Logger(t))

	const channels = 60
	base := uint32(time.Now().Unix()) - 100_000
	var clock atomic.Uint32
	for i := range channels {
		id := scid(820000+uint64(i), 0)
		ann := &persistence.ChannelAnnouncement{SCID: id, NodeID1: nodeID(1), NodeID2: nodeID(byte(2 + i)), Features: []byte{}, Signed: []byte{byte(i)}}
		if err := w.Submit(ctx, ann); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := clock.Add(1)
				id := scid(820000+uint64((i*7+p)%channels), 0)
				dir := uint8(i / 3 % 2)
				u := &persistence.ChannelUpdate{SCID: id, Direction: dir, Timestamp: base + n, MessageFlags: 1,
					ChannelFlags: dir, CLTVExpiryDelta: 40, HTLCMinimumMsat: 1000, FeeBaseMsat: n % 97,
					FeeProportionalMillionths: n % 13, HTLCMaximumMsat: 1_000_000, Signed: []byte{byte(n), byte(n >> 8), byte(n >> 16)}}
				u.ChannelFlags |= uint8(n%5/4) << 1 // disabled now and then
				if err := w.Submit(ctx, u); err != nil {
					return
				}
				if i%4 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	client := clientModel{}
	var last time.Time
	deltas := 0
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		ref := time.Now()
		if err := index.CatchUp(ctx, ref); err != nil {
			t.Fatal(err)
		}
		d, _, err := index.Delta(last, ref)
		if err != nil {
			t.Fatal(err)
		}
		client.apply(d)
		if n := compareWithFull(t, index, client, ref); n > 0 {
			t.Fatalf("after delta %d the client differs from a full delta in %d directions", deltas, n)
		}
		last = ref
		deltas++
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ref := time.Now()
	if err := index.CatchUp(ctx, ref); err != nil {
		t.Fatal(err)
	}
	d, _, err := index.Delta(last, ref)
	if err != nil {
		t.Fatal(err)
	}
	client.apply(d)
	if n := compareWithFull(t, index, client, ref); n > 0 {
		t.Errorf("at the end the client differs from a full delta in %d directions", n)
	}
	if clock.Load() < 1000 || len(client) != channels {
		t.Fatalf("too little traffic: %d channels, %d updates", len(client), clock.Load())
	}
	t.Logf("%d deltas over %d updates", deltas, clock.Load())
}

// compareWithFull counts the channel directions where client differs from
// what a full delta at ref holds.
func compareWithFull(t *testing.T, index *lookup.Index, client clientModel, ref time.Time) int {
	t.Helper()
	full, _, err := index.Delta(time.Time{}, ref)
	if err != nil {
		t.Fatal(err)
	}
	truth := clientModel{}
	truth.apply(full)
	mismatches := 0
	for id, want := range truth {
		got := client[id]
		for dir := range 2 {
			var g *clientState
			if got != nil {
				g = got[dir]
			}
			if (g == nil) != (want[dir] == nil) || g != nil && *g != *want[dir] {
				mismatches++
				if mismatches < 5 {
					t.Errorf("channel %x dir %d: client %+v, truth %+v", id, dir, got, want[dir])
				}
			}
		}
	}
	return mismatches
}
