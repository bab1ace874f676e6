package lookup

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/rgs"
)

// version is one stored channel update, reduced to what deltas need.
type version struct {
	seen      int64 // unix microseconds
	timestamp uint32
	flags     uint8 // channel_flags
	imported  bool  // stored by lnsync import: retention keeps it longer
	policy    rgs.Policy
}

// versioned is one stored version of a channel direction or a node.
type versioned interface {
	seenAt() int64      // unix microseconds when stored
	gossipTime() uint32 // the message's own timestamp
	fromImport() bool   // stored by lnsync import
}

func (v version) seenAt() int64          { return v.seen }
func (v version) gossipTime() uint32     { return v.timestamp }
func (v version) fromImport() bool       { return v.imported }
func (v nodeVersion) seenAt() int64      { return v.seen }
func (v nodeVersion) gossipTime() uint32 { return v.timestamp }
func (v nodeVersion) fromImport() bool   { return v.imported }

// history is one channel direction's or node's versions in seen order, with,
// for each position i, newest[i]: the index of the highest gossip timestamp
// in [0, i]. The newest version as of any time is then one binary search away.
type history[V versioned] struct {
	versions []V
	newest   []int32
}

// insert adds v keeping seen order (live rows arrive in order; imported
// history may not).
func (h *history[V]) insert(v V) {
	i := len(h.versions)
	for i > 0 && h.versions[i-1].seenAt() > v.seenAt() {
		i--
	}
	h.versions = slices.Insert(h.versions, i, v)
	h.newest = slices.Insert(h.newest, i, 0)
	h.reindex(i)
}

// reindex recomputes newest from position i on.
func (h *history[V]) reindex(i int) {
	for ; i < len(h.versions); i++ {
		if i == 0 {
			h.newest[0] = 0
			continue
		}
		best := h.newest[i-1]
		if h.versions[i].gossipTime() > h.versions[best].gossipTime() {
			best = int32(i)
		}
		h.newest[i] = best
	}
}

// at returns the newest version (highest gossip timestamp) among those seen
// before t, or nil.
func (h *history[V]) at(t int64) *V {
	n := sort.Search(len(h.versions), func(i int) bool { return h.versions[i].seenAt() >= t })
	if n == 0 {
		return nil
	}
	return &h.versions[h.newest[n-1]]
}

// window returns the positions [lo, hi) of the versions seen in [l, c).
func (h *history[V]) window(l, c int64) (lo, hi int) {
	lo = sort.Search(len(h.versions), func(i int) bool { return h.versions[i].seenAt() >= l })
	hi = sort.Search(len(h.versions), func(i int) bool { return h.versions[i].seenAt() >= c })
	return lo, hi
}

// prune drops what retention drops from the database (see
// persistence.Store.Prune): a version stored before the cut-off of its
// source (live before live, imported before imported, in unix microseconds)
// goes when a version stored before that same cut-off has a higher
// timestamp. It returns how many it dropped.
func (h *history[V]) prune(live, imported int64) int {
	if len(h.versions) < 2 {
		return 0
	}
	// The highest timestamp stored before c, or -1.
	highest := func(c int64) int64 {
		k := sort.Search(len(h.versions), func(i int) bool { return h.versions[i].seenAt() >= c })
		if k == 0 {
			return -1
		}
		return int64(h.versions[h.newest[k-1]].gossipTime())
	}
	hiLive, hiImported := highest(live), highest(imported)
	kept := make([]V, 0, len(h.versions))
	for _, v := range h.versions {
		c, hi := live, hiLive
		if v.fromImport() {
			c, hi = imported, hiImported
		}
		if v.seenAt() < c && hi > int64(v.gossipTime()) {
			continue
		}
		kept = append(kept, v)
	}
	dropped := len(h.versions) - len(kept)
	if dropped == 0 {
		return 0
	}
	h.versions = kept
	h.newest = make([]int32, len(kept))
	h.reindex(0)
	return dropped
}

type channel struct {
	scid         uint64
	node1, node2 rgs.NodeID
	n1, n2       int32 // dense numbers of node1 and node2 (Index.num)
	features     []byte
	fundingSats  uint64
	fundingKnown bool
	imported     bool  // the announcement was stored by lnsync import
	seen         int64 // announcement first stored
	dirs         [2]history[version]
}

// nodeVersion is one stored node announcement.
type nodeVersion struct {
	seen      int64
	timestamp uint32
	imported  bool
	features  []byte        // interned
	addresses []rgs.Address // parsed, interned per distinct address list
	addrKey   string        // raw address bytes, for comparison
}

type node struct {
	id rgs.NodeID
	history[nodeVersion]
}

// Source is what an Index reads from: persistence.Store satisfies it.
type Source interface {
	ReadSince(ctx context.Context, cur persistence.Cursor, v persistence.Visitor) (persistence.Cursor, time.Time, error)
	Seal(ctx context.Context) (time.Time, error)
}

// Index is the in-memory gossip history deltas are computed from. It is safe
// for concurrent use: many deltas may be computed while it catches up.
type Index struct {
	src    Source
	chain  [32]byte
	logger *slog.Logger

	syncMu sync.Mutex // one reader of the source at a time

	mu       sync.RWMutex
	channels map[uint64]*channel
	nodes    map[rgs.NodeID]*node
	// Every node id seen (channel endpoint or announced) has a dense number,
	// so that a delta marks nodes in flat slices instead of maps.
	numbers  map[rgs.NodeID]int32
	numbered []*node // by number; nil for a node never announced
	cursor   persistence.Cursor
	covered  time.Time // every row with seen < covered has been read
	rows     int

	interned map[string][]byte      // feature bit fields
	addrs    map[string]addressList // address lists
	trimmed  trimCounts             // what the RGS format could not carry
}

// addressList is a node_announcement's address field as the RGS format
// carries it, and how many descriptors had to be dropped.
type addressList struct {
	list             []rgs.Address
	tooLong, tooMany int
}

// trimCounts count the node_announcements whose addresses were trimmed to
// fit a version 2 node entry, and the addresses dropped. Peers may announce
// what the format cannot hold; a generation never fails for it.
type trimCounts struct {
	announcements, tooLong, tooMany atomic.Int64
}

// NewIndex returns an empty Index over src for the given chain. Call CatchUp
// before computing deltas.
func NewIndex(src Source, chain [32]byte, logger *slog.Logger) *Index {
	return &Index{
		src:      src,
		chain:    chain,
		logger:   logger.With("component", "lookup"),
		channels: make(map[uint64]*channel),
		nodes:    make(map[rgs.NodeID]*node),
		numbers:  make(map[rgs.NodeID]int32),
		interned: make(map[string][]byte),
		addrs:    make(map[string]addressList),
	}
}

// num returns id's dense number, giving it the next one if it has none.
func (x *Index) num(id rgs.NodeID) int32 {
	if n, ok := x.numbers[id]; ok {
		return n
	}
	n := int32(len(x.numbered))
	x.numbers[id] = n
	x.numbered = append(x.numbered, nil)
	return n
}

// Covered returns the time up to which the Index holds every stored row.
func (x *Index) Covered() time.Time {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.covered
}

// Sync reads the rows stored since the last Sync.
func (x *Index) Sync(ctx context.Context) error {
	x.syncMu.Lock()
	defer x.syncMu.Unlock()
	return x.syncLocked(ctx)
}

func (x *Index) syncLocked(ctx context.Context) error {
	x.mu.RLock()
	cur := x.cursor
	x.mu.RUnlock()
	var anns []*persistence.StoredAnnouncement
	var ups []*persistence.StoredUpdate
	var nodes []*persistence.StoredNode
	apply := func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		for _, a := range anns {
			x.addAnnouncement(a)
		}
		for _, u := range ups {
			x.addUpdate(u)
		}
		for _, n := range nodes {
			x.addNode(n)
		}
		x.rows += len(anns) + len(ups) + len(nodes)
		anns, ups, nodes = anns[:0], ups[:0], nodes[:0]
	}
	// Rows are normally collected first and applied under the write lock in
	// one go, so that a delta never sees half of a read. The first load is
	// applied in chunks instead, to bound memory: no delta can run before it
	// ends, since nothing is covered yet.
	initial := cur == (persistence.Cursor{})
	const chunk = 1 << 16
	step := func() error {
		if initial && len(anns)+len(ups)+len(nodes) >= chunk {
			apply()
		}
		return nil
	}
	next, clock, err := x.src.ReadSince(ctx, cur, persistence.Visitor{
		Announcement: func(a *persistence.StoredAnnouncement) error { anns = append(anns, a); return step() },
		Update:       func(u *persistence.StoredUpdate) error { ups = append(ups, u); return step() },
		Node:         func(n *persistence.StoredNode) error { nodes = append(nodes, n); return step() },
	})
	if err != nil {
		if initial {
			x.reset()
		}
		return fmt.Errorf("sync index: %w", err)
	}
	apply()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cursor = next
	if clock.After(x.covered) {
		x.covered = clock
	}
	return nil
}

// reset empties the Index after a failed first load.
func (x *Index) reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.channels = make(map[uint64]*channel)
	x.nodes = make(map[rgs.NodeID]*node)
	x.numbers, x.numbered = make(map[rgs.NodeID]int32), nil
	x.interned = make(map[string][]byte)
	x.addrs = make(map[string]addressList)
	x.rows = 0
}

// CatchUp makes sure the Index holds every row with seen < c: it reads new
// rows and, when that is not enough, seals the ingest clock (waiting for
// batches in flight) and reads again.
func (x *Index) CatchUp(ctx context.Context, c time.Time) error {
	x.syncMu.Lock()
	defer x.syncMu.Unlock()
	if err := x.syncLocked(ctx); err != nil {
		return err
	}
	if !x.Covered().Before(c) {
		return nil
	}
	if _, err := x.src.Seal(ctx); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if err := x.syncLocked(ctx); err != nil {
		return err
	}
	if x.Covered().Before(c) {
		return fmt.Errorf("catch up: index covers %s, before the requested %s (is the reference time in the future?)",
			x.Covered().UTC().Format(time.RFC3339), c.UTC().Format(time.RFC3339))
	}
	return nil
}

func (x *Index) intern(b []byte) []byte {
	if v, ok := x.interned[string(b)]; ok {
		return v
	}
	v := bytes.Clone(b)
	if v == nil {
		v = []byte{}
	}
	x.interned[string(b)] = v
	return v
}

func (x *Index) addAnnouncement(a *persistence.StoredAnnouncement) {
	c := x.channels[a.SCID]
	if c == nil {
		c = &channel{scid: a.SCID}
		x.channels[a.SCID] = c
	}
	c.node1, c.node2 = a.NodeID1, a.NodeID2
	c.n1, c.n2 = x.num(a.NodeID1), x.num(a.NodeID2)
	c.features = x.intern(a.Features)
	c.fundingSats, c.fundingKnown = a.FundingSats, a.FundingKnown
	c.seen, c.imported = a.Seen.UnixMicro(), a.Imported
}

func (x *Index) addUpdate(u *persistence.StoredUpdate) {
	c := x.channels[u.SCID]
	if c == nil {
		// Updates are only stored for announced channels; one can still arrive
		// in a read before its announcement when an import stores them in the
		// same batch. Keep it: the announcement completes the channel.
		c = &channel{scid: u.SCID, seen: 1<<63 - 1}
		x.channels[u.SCID] = c
	}
	c.dirs[u.Direction&1].insert(version{
		seen:      u.Seen.UnixMicro(),
		timestamp: u.Timestamp,
		flags:     u.ChannelFlags,
		imported:  u.Imported,
		policy: rgs.Policy{
			CLTVExpiryDelta:           u.CLTVExpiryDelta,
			HTLCMinimumMsat:           u.HTLCMinimumMsat,
			FeeBaseMsat:               u.FeeBaseMsat,
			FeeProportionalMillionths: u.FeeProportionalMillionths,
			HTLCMaximumMsat:           u.HTLCMaximumMsat,
		},
	})
}

func (x *Index) addNode(s *persistence.StoredNode) {
	n := x.nodes[s.NodeID]
	if n == nil {
		n = &node{id: s.NodeID}
		x.nodes[s.NodeID] = n
		x.numbered[x.num(s.NodeID)] = n
	}
	key := string(s.Addresses)
	al, ok := x.addrs[key]
	if !ok {
		al.list, al.tooLong, al.tooMany = rgs.FitAddresses(rgs.SplitAddresses(s.Addresses))
		x.addrs[key] = al
	}
	if al.tooLong+al.tooMany > 0 {
		x.trimmed.announcements.Add(1)
		x.trimmed.tooLong.Add(int64(al.tooLong))
		x.trimmed.tooMany.Add(int64(al.tooMany))
	}
	n.insert(nodeVersion{
		seen:      s.Seen.UnixMicro(),
		timestamp: s.Timestamp,
		imported:  s.Imported,
		features:  x.intern(s.Features),
		addresses: al.list,
		addrKey:   key,
	})
}

// Stats describes the Index's size.
type Stats struct {
	Channels int
	Nodes    int
	Rows     int
	Covered  time.Time
}

// Stats returns the Index's size.
func (x *Index) Stats() Stats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return Stats{Channels: len(x.channels), Nodes: len(x.nodes), Rows: x.rows, Covered: x.covered}
}

// Prune drops from memory what retention drops from the database (see
// persistence.Store.Prune) with the cut-off live for rows received live and
// imported for rows stored by lnsync import (the zero time keeps those):
// versions stored before their cut-off except each channel direction's and
// node's newest one before it, and channels silent since before the cut-off
// of their announcement. Deltas for a last sync after the cut-offs are
// unaffected; older ones can only grow (a channel whose history before the
// client's sync is gone is sent whole).
func (x *Index) Prune(live, imported time.Time) (versions, channels int) {
	cl, ci := live.UnixMicro(), int64(math.MinInt64)
	if !imported.IsZero() {
		ci = imported.UnixMicro()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, ch := range x.channels {
		newest := uint32(0)
		recent := false
		for d := range ch.dirs {
			h := &ch.dirs[d]
			if v := h.at(1<<63 - 1); v != nil && v.timestamp > newest {
				newest = v.timestamp
			}
			for _, v := range h.versions {
				if c := cutoffOf(v.imported, cl, ci); v.seen >= c {
					recent = true
				}
			}
		}
		c := cutoffOf(ch.imported, cl, ci)
		if ch.seen < c && !recent && int64(newest) < c/1_000_000 {
			for d := range ch.dirs {
				versions += len(ch.dirs[d].versions)
			}
			delete(x.channels, id)
			channels++
			continue
		}
		for d := range ch.dirs {
			versions += ch.dirs[d].prune(cl, ci)
		}
	}
	for _, n := range x.nodes {
		versions += n.prune(cl, ci)
	}
	x.rows -= versions + channels // a dropped channel takes its announcement row along
	return versions, channels
}

// cutoffOf returns the cut-off that applies to a row of the given source.
func cutoffOf(imported bool, live, importedCut int64) int64 {
	if imported {
		return importedCut
	}
	return live
}

// SetFunding records a channel's funding amount learnt after its
// announcement was read (see download.FundingBackfill); later deltas carry
// it as the version 2 capacity. An unknown scid is ignored: the amount is
// stored, and the Index reads it with the announcement.
func (x *Index) SetFunding(scid, sats uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c := x.channels[scid]; c != nil {
		c.fundingSats, c.fundingKnown = sats, true
	}
}
