package lookup

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/lnsync/lnsync/rgs"
)

const (
	// StaleAge is how old a channel direction's newest gossip timestamp may be
	// before the channel leaves every delta (LDK prunes it at the same age).
	StaleAge = 14 * 24 * time.Hour
	// OldReferenceAge: a changed direction whose previous version was stored
	// this long before C is sent in full, since the client may have lost it.
	OldReferenceAge = 6 * 24 * time.Hour
	// ReminderBuckets is how many buckets channels and nodes are spread over
	// for reminders; one bucket falls due every ReminderPeriod, so each is due
	// once every ReminderBuckets*ReminderPeriod (6 days).
	ReminderBuckets = 24
	// ReminderPeriod is the spacing of bucket due times, aligned to the Unix
	// epoch.
	ReminderPeriod = 6 * time.Hour
	// ClientRecordLife is how long an LDK client keeps what a file told it
	// without a newer word: it backdates everything by 7 days and prunes
	// what is 14 days old, every hour, also between syncs.
	ClientRecordLife = 7 * 24 * time.Hour
	// ReminderSlack is how much later than its usual cadence a client may
	// sync again without losing channels to pruning: one grid step.
	ReminderSlack = 3 * time.Hour
)

// DeltaStats counts what a delta holds and what it left out.
type DeltaStats struct {
	Announcements int
	Full          int
	Incremental   int
	Reminders     int
	NodesFull     int
	NodesMutated  int
	// StaleChannels were announced but have no direction newer than
	// StaleAge at C.
	StaleChannels int
	// HalfChannels are served with one live direction: the other was never
	// received or is older than StaleAge. LDK never routes through them, but
	// they carry their nodes (and the nodes' addresses) to the client.
	HalfChannels int
	// MisorderedChannels have node_id_1 >= node_id_2; current clients reject a
	// whole file for one of them, so they are never sent.
	MisorderedChannels int
}

// Delta computes the delta for a client whose last sync was at last (zero or
// the Unix epoch for a client with no graph) as of reference time ref, from
// the rows stored before ref. The Index must cover ref (see CatchUp).
//
// The header timestamp is ref itself: the client's next request is for ref,
// and a file is valid for clients even when it carries no channel content.
func (x *Index) Delta(last, ref time.Time) (*rgs.Delta, DeltaStats, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var st DeltaStats
	if ref.Unix() <= 0 || ref.Unix() > 1<<32-1 {
		return nil, st, fmt.Errorf("reference time %d outside the RGS timestamp range", ref.Unix())
	}
	if x.covered.Before(ref) {
		return nil, st, fmt.Errorf("index covers %s, before reference time %s", x.covered.UTC().Format(time.RFC3339), ref.UTC().Format(time.RFC3339))
	}
	c := ref.UnixMicro()
	l := int64(0)
	if last.Unix() > 0 {
		l = last.UnixMicro()
	}
	if l > c {
		l = c
	}
	staleC := ref.Add(-StaleAge).Unix()
	staleL := time.UnixMicro(l).Add(-StaleAge).Unix()
	oldRef := ref.Add(-OldReferenceAge).UnixMicro()
	due := dueBuckets(l, c)

	d := &rgs.Delta{ChainHash: x.chain, Timestamp: uint32(ref.Unix())}
	liveAtC := make([]bool, len(x.numbered))
	liveAtL := make([]bool, len(x.numbered))
	for _, ch := range x.channels {
		if ch.seen >= c {
			continue // not announced yet as of C (or an update without announcement)
		}
		cur := [2]*version{ch.dirs[0].at(c), ch.dirs[1].at(c)}
		live := [2]bool{fresh(cur[0], staleC), fresh(cur[1], staleC)}
		if !live[0] && !live[1] {
			st.StaleChannels++
			continue
		}
		if bytes.Compare(ch.node1[:], ch.node2[:]) >= 0 {
			st.MisorderedChannels++
			continue
		}
		liveAtC[ch.n1], liveAtC[ch.n2] = true, true
		half := !live[0] || !live[1]
		prev := [2]*version{ch.dirs[0].at(l), ch.dirs[1].at(l)}
		var knownAtL bool
		if half {
			// The client may hold the channel with the one direction it
			// had at L, until 7 days after the file that brought it.
			st.HalfChannels++
			knownAtL = l > 0 && ch.seen < l && (fresh(prev[0], staleL) || fresh(prev[1], staleL)) && !halfChannelDue(ch.seen, l, c)
		} else {
			knownAtL = l > 0 && ch.seen < l && fresh(prev[0], staleL) && fresh(prev[1], staleL)
		}
		if !knownAtL {
			// New to the client (or it pruned the channel): announce it and send
			// its live directions whole.
			d.Announcements = append(d.Announcements, rgs.Announcement{
				SCID: ch.scid, Features: ch.features, NodeID1: ch.node1, NodeID2: ch.node2,
				FundingSats: ch.fundingSats, FundingKnown: ch.fundingKnown,
			})
			st.Announcements++
			for dir := range 2 {
				if live[dir] {
					d.Updates = append(d.Updates, fullUpdate(ch.scid, uint8(dir), cur[dir]))
					st.Full++
				}
			}
			continue
		}
		liveAtL[ch.n1], liveAtL[ch.n2] = true, true
		remind := due[ChannelBucket(ch.scid)]
		for dir := range 2 {
			if !live[dir] {
				continue
			}
			now, before := cur[dir], prev[dir]
			if before == nil || int64(before.timestamp) < staleL {
				// The direction is new to the client, or it pruned it.
				d.Updates = append(d.Updates, fullUpdate(ch.scid, uint8(dir), now))
				st.Full++
				continue
			}
			changed, disabledChanged := changedSince(&ch.dirs[dir], before, l, c)
			switch {
			case changed == 0 && !disabledChanged:
				if remind {
					d.Updates = append(d.Updates, rgs.Update{SCID: ch.scid, Direction: uint8(dir), Disabled: disabled(now.flags), Kind: rgs.Reminder})
					st.Reminders++
				}
			case changed == rgs.AllFields || before.seen <= oldRef:
				d.Updates = append(d.Updates, fullUpdate(ch.scid, uint8(dir), now))
				st.Full++
			default:
				d.Updates = append(d.Updates, rgs.Update{
					SCID: ch.scid, Direction: uint8(dir), Disabled: disabled(now.flags),
					Kind: rgs.Incremental, Policy: now.policy, Changed: changed,
				})
				st.Incremental++
			}
		}
	}
	x.nodeDeltas(d, &st, l, c, due, liveAtC, liveAtL)
	d.Sort()
	return d, st, nil
}

// nodeDeltas adds version 2 node data: whole data for nodes new to the client
// or due for a reminder, the changed parts for nodes whose announcement changed.
func (x *Index) nodeDeltas(d *rgs.Delta, st *DeltaStats, l, c int64, due [ReminderBuckets]bool, liveAtC, liveAtL []bool) {
	oldRef := c - OldReferenceAge.Microseconds()
	for num, live := range liveAtC {
		n := x.numbered[num]
		if !live || n == nil {
			continue
		}
		id := n.id
		cur := n.at(c)
		if cur == nil {
			continue
		}
		prev := n.at(l)
		whole := rgs.NodeDelta{NodeID: id, HasAddresses: true, Addresses: cur.addresses, HasFeatures: true, Features: cur.features}
		switch {
		case !liveAtL[num] || prev == nil || due[NodeBucket(id)]:
			d.Nodes = append(d.Nodes, whole)
			st.NodesFull++
		default:
			addrs, feats := nodeChangedSince(&n.history, prev, l, c)
			if !addrs && !feats {
				continue
			}
			if prev.seen <= oldRef {
				d.Nodes = append(d.Nodes, whole)
				st.NodesFull++
				continue
			}
			nd := rgs.NodeDelta{NodeID: id}
			if addrs {
				nd.HasAddresses, nd.Addresses = true, cur.addresses
			}
			if feats {
				nd.HasFeatures, nd.Features = true, cur.features
			}
			d.Nodes = append(d.Nodes, nd)
			st.NodesMutated++
		}
	}
}

// changedSince returns the policy fields, and whether the disable bit, in
// which any version that was the newest at some time in [l, c) differs from
// before. The delta for l also serves clients whose last sync is later (a
// request off the grid, a scope wider than needed): such a client may hold any
// of those versions, so a value that changed and changed back is still sent.
func changedSince(h *history[version], before *version, l, c int64) (rgs.Field, bool) {
	lo, hi := h.window(l, c)
	var f rgs.Field
	dis := false
	for i := lo; i < hi; i++ {
		v := &h.versions[h.newest[i]]
		f |= v.policy.Diff(before.policy)
		dis = dis || disabled(v.flags) != disabled(before.flags)
	}
	return f, dis
}

// nodeChangedSince reports whether the addresses, and the features, of any
// version that was the newest at some time in [l, c) differ from before (see
// changedSince).
func nodeChangedSince(h *history[nodeVersion], before *nodeVersion, l, c int64) (addrs, feats bool) {
	lo, hi := h.window(l, c)
	for i := lo; i < hi; i++ {
		v := &h.versions[h.newest[i]]
		addrs = addrs || v.addrKey != before.addrKey
		feats = feats || !bytes.Equal(v.features, before.features)
	}
	return addrs, feats
}

// fresh reports whether v exists and its gossip timestamp is not older than
// stale (Unix seconds).
func fresh(v *version, stale int64) bool { return v != nil && int64(v.timestamp) >= stale }

// HalfChannelSlack is how long after a half channel's record expires on a
// client (ClientRecordLife after the file that brought it) the client is
// assumed to have pruned it: LDK prunes once an hour.
const HalfChannelSlack = time.Hour

// HalfChannelPhases is how many times per cycle (see halfChannelDue) a half
// channel is sent again.
const HalfChannelPhases = 4

// halfChannelDue reports whether a channel with one live direction,
// announced (stored) at anchor, is sent again to a client whose last sync
// was at l, in the delta for c (microseconds).
//
// An LDK client drops such a channel ClientRecordLife after the header of
// the file that added it, and ignores it while it still holds it, so a
// repeat only helps after the client pruned it. The client is assumed to
// sync every p = c - l; q is the smallest multiple of p longer than
// ClientRecordLife + HalfChannelSlack. The channel is sent when [l, c)
// holds anchor + k*q/HalfChannelPhases for some k >= 1. A client that keeps
// its cadence gets it back at the first sync after it pruned it (without it
// for at most one sync period and an hour in each cycle), once the first
// repeat after its first copy is past: that takes at most
// q/HalfChannelPhases plus a sync period. Clients that sync less often than
// every q/HalfChannelPhases get it in every delta.
func halfChannelDue(anchor, l, c int64) bool {
	p := c - l
	if l <= 0 || p <= 0 {
		return false
	}
	life := (ClientRecordLife + HalfChannelSlack).Microseconds()
	step := (life/p + 1) * p / HalfChannelPhases
	if c-1 < anchor+step {
		return false
	}
	k := (c - 1 - anchor) / step // the last repeat before c
	return anchor+k*step >= l
}

func fullUpdate(scid uint64, dir uint8, v *version) rgs.Update {
	return rgs.Update{SCID: scid, Direction: dir, Disabled: disabled(v.flags), Kind: rgs.Full, Policy: v.policy}
}

func disabled(channelFlags uint8) bool { return channelFlags&0x02 != 0 }

// ChannelBucket is the reminder bucket of a channel: FNV-1a of the SCID's
// 8 big-endian bytes, modulo ReminderBuckets.
func ChannelBucket(scid uint64) int {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], scid)
	h := fnv.New64a()
	h.Write(b[:])
	return int(h.Sum64() % ReminderBuckets)
}

// NodeBucket is the reminder bucket of a node: FNV-1a of its key's
// 32-byte x-coordinate, modulo ReminderBuckets.
func NodeBucket(id rgs.NodeID) int {
	h := fnv.New64a()
	h.Write(id[1:])
	return int(h.Sum64() % ReminderBuckets)
}

// BucketsDue reports which reminder buckets fell due in (last, ref]. A
// zero last (a full delta) has none.
func BucketsDue(last, ref time.Time) [ReminderBuckets]bool {
	l := int64(0)
	if last.Unix() > 0 {
		l = last.UnixMicro()
	}
	return dueBuckets(l, ref.UnixMicro())
}

// dueBuckets reports which buckets need reminders in the delta (l, c]
// (microseconds). Bucket b is due at every k*ReminderPeriod with
// k mod ReminderBuckets == b, and is reminded when a due time falls in
// (l, c]. It is also reminded when its last due time D at or before l
// could leave the client without it before its next sync: a client keeps
// what a file told it until the file's header plus ClientRecordLife, it may
// have received the previous reminder as early as D, and it is assumed to
// sync again after as long as it waited this time (c - l), give or take
// ReminderSlack. Without this, a client syncing every 45 h or 4 days
// prunes channels between two syncs that no later delta re-announces. A
// full delta (l == 0) needs no reminders.
func dueBuckets(l, c int64) [ReminderBuckets]bool {
	var due [ReminderBuckets]bool
	if l <= 0 {
		return due
	}
	period := ReminderPeriod.Microseconds()
	first := l/period + 1 // first due time strictly after l
	last := c / period    // last due time at or before c
	for k := first; k <= last && k < first+ReminderBuckets; k++ {
		due[k%ReminderBuckets] = true
	}
	// Due times at or before l, newest first, back one whole cycle.
	nextSync := c + (c - l) + ReminderSlack.Microseconds()
	for k := first - 1; k >= first-ReminderBuckets && k >= 0; k-- {
		if k*period+ClientRecordLife.Microseconds() <= nextSync {
			due[k%ReminderBuckets] = true
		}
	}
	return due
}

// Encode catches the Index up to ref and returns the delta for last encoded
// in the given format version.
func (x *Index) Encode(ctx context.Context, last, ref time.Time, formatVersion int) ([]byte, DeltaStats, error) {
	if err := x.CatchUp(ctx, ref); err != nil {
		return nil, DeltaStats{}, err
	}
	d, st, err := x.Delta(last, ref)
	if err != nil {
		return nil, st, err
	}
	b, err := d.Encode(formatVersion)
	if err != nil {
		return nil, st, fmt.Errorf("encode delta: %w", err)
	}
	return b, st, nil
}
