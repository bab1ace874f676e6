package download

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/lnsync/lnsync/persistence"
)

// Time rules of BOLT 7 as LDK applies them.
const (
	maxAhead  = 24 * time.Hour
	maxBehind = 14 * 24 * time.Hour
)

// seenGeneration is how long the duplicate filter remembers a message at
// least (it forgets after one to two generations). Beyond that a repeated
// message is verified again and stored as a harmless duplicate.
const seenGeneration = 24 * time.Hour

// maxSeen caps one generation of the duplicate filter (about 150 MB for two
// full generations); a full generation rotates early.
const maxSeen = 1 << 20

// ValidatorConfig configures a Validator. Zero fields take the defaults.
type ValidatorConfig struct {
	// ChainHash is the chain_hash (wire byte order) every message must carry.
	ChainHash [32]byte
	// Workers is how many goroutines check signatures. Default runtime.NumCPU().
	Workers int
	// PendingMax bounds how many channel updates and node announcements may
	// wait for their channel's announcement. Default 10000.
	PendingMax int
	// PendingPerSource bounds how many of them one source (a peer) may have
	// waiting, so that a peer flooding updates of unknown channels cannot
	// crowd out the others. Default PendingMax/4.
	PendingPerSource int
	// PendingTimeout is how long such a message waits before it is dropped
	// (as unknown_channel or no_channel). Default 2m. Negative: it waits until
	// ExpirePending (imports, where file order decides).
	PendingTimeout time.Duration
	// Now is the clock of the waiting room. Default time.Now.
	Now func() time.Time
	// FundingREST is the base URL of a bitcoind REST interface
	// (http://host:8332/rest). When set, every channel announcement's funding
	// output is looked up: it must pay the 2-of-2 of the announcement's
	// bitcoin keys (else funding_invalid), and its value is stored as the
	// channel's capacity, which caps htlc_maximum_msat. When the endpoint
	// cannot answer, the announcement is stored with an unknown capacity.
	// Empty (default): no lookup.
	FundingREST string
	// Waiting, when set, holds messages that wait for their channel in the
	// database: every newly accepted channel announcement takes back what
	// waits for it and its nodes and validates it (at its own receive
	// time). With ParkWaiting, ExpirePending stores what still waits there
	// (verdict waiting) instead of dropping it: imports set it, so an update
	// whose announcement arrives in a later import or live is kept.
	Waiting WaitingRoom
	// ParkWaiting: see Waiting.
	ParkWaiting bool
	// ImportedWaiting marks what ExpirePending parks as imported (for
	// retention.imported).
	ImportedWaiting bool
}

// WaitingRoom stores messages waiting for their channel;
// persistence.Store is one.
type WaitingRoom interface {
	AddWaiting(ctx context.Context, msgs []persistence.WaitingMessage) (int64, error)
	TakeWaiting(ctx context.Context, scid uint64, nodes [][33]byte) ([]persistence.WaitingMessage, error)
}

func (c *ValidatorConfig) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.PendingMax <= 0 {
		c.PendingMax = 10000
	}
	if c.PendingTimeout == 0 {
		c.PendingTimeout = 2 * time.Minute
	}
	if c.PendingPerSource <= 0 {
		c.PendingPerSource = max(1, c.PendingMax/4)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Source is who delivered a message: a peer (with its id in the peers
// table) or a file. It accumulates what the validator thought of its
// messages; the peer loop reads Garbage to disconnect bad peers.
type Source struct {
	// PeerID is the peer's id for receipts; 0 records no receipts (imports).
	PeerID int32

	waiting int // messages in the waiting room; under Validator.mu

	garbage  atomic.Int64
	accepted atomic.Int64
	received atomic.Int64
}

// Garbage returns how many of the source's messages showed it broken or
// hostile (bad signatures, wrong chain, malformed …).
func (s *Source) Garbage() int64 { return s.garbage.Load() }

// Accepted returns how many of the source's messages were new and valid.
func (s *Source) Accepted() int64 { return s.accepted.Load() }

// Received returns how many gossip messages the source delivered.
func (s *Source) Received() int64 { return s.received.Load() }

// Message is one delivered wire message.
type Message struct {
	// Wire is the complete message, type included. The validator keeps it
	// (it becomes the stored signed bytes); the caller must not modify it.
	Wire []byte
	// At is when it was received; it is the clock of the time rules and the
	// receive time stored with it.
	At time.Time
	// From is who delivered it. Never nil.
	From *Source
}

// state of a message in the duplicate filter.
const (
	stateInFlight = iota // being validated or waiting for its channel
	stateAccepted
	stateRejected
)

type delivery struct {
	peer int32
	at   time.Time
}

// entry is what the duplicate filter knows of one message.
type entry struct {
	state  int
	reason Reason     // when rejected
	peers  []delivery // first delivery per peer; receipts once accepted
}

type job struct {
	msg   Message
	hash  [32]byte
	entry *entry
	p     *parsed // set once parsed (jobs released from the waiting room)
}

// channel is what validating an update needs of an announced channel.
type channel struct {
	keys         [2]*btcec.PublicKey // nil until needed, for channels loaded from the database
	ids          [2][33]byte
	fundingSats  uint64
	fundingKnown bool
}

type pending struct {
	job      job
	deadline time.Time
}

// Validator is the only path from received bytes to the database: it decodes
// gossip, checks chain, signatures, ordering and time rules on a pool of
// workers, holds updates and node announcements that arrive before their
// channel's announcement in a bounded waiting room, and submits what is
// valid, with per-peer receipts, to the writer. It is transport-independent:
// live peers and imports feed it the same way.
//
// A Validator is safe for concurrent use. Create it with NewValidator, then
// Start and Stop it once.
type Validator struct {
	cfg    ValidatorConfig
	writer *persistence.Writer
	logger *slog.Logger
	chain  *fundingChecker // nil without FundingREST

	jobs chan job
	wg   sync.WaitGroup

	counters verdictCounters

	mu          sync.Mutex
	seen        [2]map[[32]byte]*entry // current and previous generation
	rotated     time.Time
	channels    map[uint64]*channel
	nodeChans   map[[33]byte]int // channels per node
	waitUpd     map[uint64][]pending
	waitNode    map[[33]byte][]pending
	nPending    int
	outstanding int // submitted, not yet given a verdict or parked
	idle        *sync.Cond
	released    Source       // what comes back from the Waiting room
	notQueued   atomic.Int64 // accepted messages whose records the writer no longer took
	waitingErrs outage       // failures to read the Waiting room

	stop chan struct{}
}

// NewValidator returns a Validator that submits valid records to writer.
func NewValidator(cfg ValidatorConfig, writer *persistence.Writer, logger *slog.Logger) *Validator {
	cfg.setDefaults()
	v := &Validator{
		cfg:       cfg,
		writer:    writer,
		logger:    logger.With("component", "download"),
		jobs:      make(chan job, 4*cfg.Workers),
		channels:  make(map[uint64]*channel),
		nodeChans: make(map[[33]byte]int),
		waitUpd:   make(map[uint64][]pending),
		waitNode:  make(map[[33]byte][]pending),
		stop:      make(chan struct{}),
	}
	if cfg.FundingREST != "" {
		v.chain = newFundingChecker(cfg.FundingREST)
	}
	v.seen[0] = make(map[[32]byte]*entry)
	v.seen[1] = make(map[[32]byte]*entry)
	v.rotated = time.Now()
	v.idle = sync.NewCond(&v.mu)
	return v
}

// AddChannel makes a stored channel known, so its updates validate without
// its announcement being received again. Call it before Start.
func (v *Validator) AddChannel(k persistence.ChannelKeys) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.channels[k.SCID]; ok {
		return
	}
	v.channels[k.SCID] = &channel{ids: [2][33]byte{k.NodeID1, k.NodeID2}, fundingSats: k.FundingSats, fundingKnown: k.FundingKnown}
	v.nodeChans[k.NodeID1]++
	v.nodeChans[k.NodeID2]++
}

// LoadChannels adds every channel stored in the database (AddChannel).
func (v *Validator) LoadChannels(ctx context.Context, store *persistence.Store) (int, error) {
	n := 0
	err := store.LoadChannelKeys(ctx, func(k persistence.ChannelKeys) error {
		v.AddChannel(k)
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("load channels: %w", err)
	}
	return n, nil
}

// KnowsChannel reports whether a channel announcement for scid was accepted.
func (v *Validator) KnowsChannel(scid uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.channels[scid]
	return ok
}

// Start launches the signature workers and, unless pending messages wait
// for ExpirePending, the sweeper of the waiting room. Cancelling ctx stops
// them; Stop waits for them.
func (v *Validator) Start(ctx context.Context) {
	for range v.cfg.Workers {
		v.wg.Go(func() { v.work(ctx) })
	}
	if v.cfg.PendingTimeout > 0 {
		v.wg.Go(func() {
			tick := time.NewTicker(max(v.cfg.PendingTimeout/8, 50*time.Millisecond))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-v.stop:
					return
				case <-tick.C:
					v.expire(ctx, false)
				}
			}
		})
	}
}

// Stop ends the workers after the jobs already queued; messages still
// waiting for their channel are dropped without a verdict.
func (v *Validator) Stop() {
	select {
	case <-v.stop:
	default:
		close(v.stop)
	}
	v.wg.Wait()
	if n := v.notQueued.Swap(0); n > 0 {
		v.logger.Warn("valid messages not stored: validated while shutting down", "messages", n)
	}
}

// Verdicts returns the counts of verdicts so far.
func (v *Validator) Verdicts() Verdicts { return v.counters.snapshot() }

// Pending returns how many messages wait for their channel.
func (v *Validator) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.nPending
}

// Count records a verdict on a message that never reached Submit (unknown
// or oversized types the peer loop rejects itself).
func (v *Validator) Count(from *Source, k Kind, r Reason) {
	v.counters.add(k, r)
	if from != nil && r.garbage() {
		from.garbage.Add(1)
	}
}

// Submit hands a message to the validator. It returns once the message is
// queued for a worker (blocking while the workers are busy: back-pressure)
// or given a verdict; the error is ctx's.
func (v *Validator) Submit(ctx context.Context, m Message) error {
	m.From.received.Add(1)
	if len(m.Wire) < 2 {
		v.Count(m.From, KindOther, ReasonMalformed)
		return nil
	}
	kind := kindOf(uint16(m.Wire[0])<<8 | uint16(m.Wire[1]))
	if kind == KindOther {
		v.Count(m.From, KindOther, ReasonUnknownType)
		return nil
	}
	if len(m.Wire) > MaxGossipSize {
		v.Count(m.From, kind, ReasonOversized)
		return nil
	}
	hash := sha256.Sum256(m.Wire)
	v.mu.Lock()
	v.rotateLocked()
	e := v.seen[0][hash]
	if e == nil {
		if e = v.seen[1][hash]; e != nil {
			v.seen[0][hash] = e
		}
	}
	if e != nil {
		rec := v.repeatLocked(e, m)
		reason := e.reason
		if e.state != stateRejected {
			reason = ReasonDuplicate
		}
		v.mu.Unlock()
		v.Count(m.From, kind, reason)
		if rec != nil {
			return v.submitRecords(ctx, []persistence.Record{rec})
		}
		return nil
	}
	e = &entry{state: stateInFlight}
	if m.From.PeerID != 0 {
		e.peers = []delivery{{m.From.PeerID, m.At}}
	}
	v.seen[0][hash] = e
	v.outstanding++
	v.mu.Unlock()
	select {
	case v.jobs <- job{msg: m, hash: hash, entry: e}:
		return nil
	case <-ctx.Done():
		v.mu.Lock()
		delete(v.seen[0], hash)
		v.doneLocked(1)
		v.mu.Unlock()
		return ctx.Err()
	}
}

// repeatLocked handles a message seen before: it notes the peer's first
// delivery and returns its receipt when the message was already accepted.
func (v *Validator) repeatLocked(e *entry, m Message) persistence.Record {
	if m.From.PeerID == 0 || e.state == stateRejected {
		return nil
	}
	for _, d := range e.peers {
		if d.peer == m.From.PeerID {
			return nil
		}
	}
	e.peers = append(e.peers, delivery{m.From.PeerID, m.At})
	if e.state == stateAccepted {
		return receipt(m.Wire, delivery{m.From.PeerID, m.At})
	}
	return nil
}

func receipt(wire []byte, d delivery) *persistence.Receipt {
	return &persistence.Receipt{
		ReceivedAt: d.at,
		PeerID:     d.peer,
		MsgHash:    persistence.MessageHash(wire),
		MsgType:    uint16(wire[0])<<8 | uint16(wire[1]),
		Size:       int32(len(wire)),
	}
}

// rotateLocked starts a new generation of the duplicate filter when the
// current one is old enough.
func (v *Validator) rotateLocked() {
	if time.Since(v.rotated) < seenGeneration && len(v.seen[0]) < maxSeen {
		return
	}
	v.rotated = time.Now()
	keep := v.seen[1]
	v.seen[1] = v.seen[0]
	// Messages still in flight or waiting must stay findable.
	fresh := make(map[[32]byte]*entry)
	for h, e := range keep {
		if e.state == stateInFlight {
			fresh[h] = e
		}
	}
	v.seen[0] = fresh
}

// Drain waits until every message submitted so far has a verdict or is
// parked in the waiting room.
func (v *Validator) Drain(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		v.mu.Lock()
		v.idle.Broadcast()
		v.mu.Unlock()
	})
	defer stop()
	v.mu.Lock()
	defer v.mu.Unlock()
	for v.outstanding > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.idle.Wait()
	}
	return nil
}

func (v *Validator) doneLocked(n int) {
	v.outstanding -= n
	if v.outstanding <= 0 {
		v.idle.Broadcast()
	}
}

// ExpirePending ends the wait of every message still waiting for its
// channel (the end of an import): with ParkWaiting they are stored in the
// Waiting room (verdict waiting), otherwise dropped and counted as
// unknown_channel or no_channel. A failure to store them is returned; they
// are then counted as dropped.
func (v *Validator) ExpirePending(ctx context.Context) error { return v.expire(ctx, true) }

// expireWaiting removes from a waiting room every message past its deadline
// (all of them when all is set), appending them to dropped.
func expireWaiting[K comparable](room map[K][]pending, now time.Time, all bool, dropped []pending) []pending {
	for key, ps := range room {
		keep := ps[:0]
		for _, p := range ps {
			if all || !now.Before(p.deadline) {
				dropped = append(dropped, p)
			} else {
				keep = append(keep, p)
			}
		}
		if len(keep) == 0 {
			delete(room, key)
		} else {
			room[key] = keep
		}
	}
	return dropped
}

func (v *Validator) expire(ctx context.Context, all bool) error {
	now := v.cfg.Now()
	var dropped []pending
	v.mu.Lock()
	dropped = expireWaiting(v.waitUpd, now, all, dropped)
	dropped = expireWaiting(v.waitNode, now, all, dropped)
	for _, p := range dropped {
		v.unparkLocked(p)
	}
	v.mu.Unlock()
	var err error
	parked := false
	if all && v.cfg.ParkWaiting && v.cfg.Waiting != nil && len(dropped) > 0 {
		msgs := make([]persistence.WaitingMessage, len(dropped))
		for i, p := range dropped {
			m := persistence.WaitingMessage{Signed: p.job.msg.Wire, ReceivedAt: p.job.msg.At, Imported: v.cfg.ImportedWaiting}
			if p.job.p.kind == KindNodeAnnouncement {
				m.NodeID = p.job.p.node.NodeID
			} else {
				m.SCID = p.job.p.upd.ShortChannelID.ToUint64()
			}
			msgs[i] = m
		}
		if _, err = v.cfg.Waiting.AddWaiting(ctx, msgs); err == nil {
			parked = true
		}
	}
	v.mu.Lock()
	for _, p := range dropped {
		r := ReasonUnknownChannel
		switch {
		case parked:
			r = ReasonWaiting
		case p.job.p.kind == KindNodeAnnouncement:
			r = ReasonNoChannel
		}
		v.verdictLocked(p.job, r)
	}
	v.mu.Unlock()
	return err
}

// release validates what waits in the Waiting room for a newly accepted
// channel and its nodes, each at its own receive time. It runs on its own
// goroutine, counted as outstanding, so Drain waits for it.
func (v *Validator) release(ctx context.Context, scid uint64, nodes [2][33]byte) {
	defer v.done(1)
	msgs, err := v.cfg.Waiting.TakeWaiting(ctx, scid, nodes[:])
	if ctx.Err() != nil {
		return
	}
	v.waitingErrs.Report(v.logger, "messages waiting for a channel could not be read; they stay until it is announced again", err)
	if err != nil {
		return
	}
	for _, m := range msgs {
		// A message that waited was given a verdict once: forget it, so it is
		// validated now rather than answered from the duplicate filter.
		hash := sha256.Sum256(m.Signed)
		v.mu.Lock()
		delete(v.seen[0], hash)
		delete(v.seen[1], hash)
		v.mu.Unlock()
		if err := v.Submit(ctx, Message{Wire: m.Signed, At: m.ReceivedAt, From: &v.released}); err != nil {
			return
		}
	}
}

func (v *Validator) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.stop:
			// Finish what is queued, then stop.
			for {
				select {
				case j := <-v.jobs:
					v.process(ctx, j)
				default:
					return
				}
			}
		case j := <-v.jobs:
			v.process(ctx, j)
		}
	}
}

// process validates one message and everything its acceptance releases.
func (v *Validator) process(ctx context.Context, j job) {
	p, err := parse(j.msg.Wire)
	if err != nil {
		v.reject(j, ReasonMalformed)
		return
	}
	j.p = p
	if r := v.stateless(j); r != ReasonOK {
		v.reject(j, r)
		return
	}
	switch p.kind {
	case KindChannelAnnouncement:
		k1, k2, ok := p.verifyAnnouncement()
		if !ok {
			v.reject(j, ReasonBadSignature)
			return
		}
		var funding uint64
		if v.chain != nil {
			sats, err := v.chain.amount(ctx, p.ann.ShortChannelID.ToUint64(), p.ann.BitcoinKey1, p.ann.BitcoinKey2)
			switch {
			case errors.Is(err, errFundingInvalid):
				v.reject(j, ReasonFundingInvalid)
				return
			case err != nil:
				v.logger.Warn("funding output not checked", "scid", p.ann.ShortChannelID.String(), "err", err)
			default:
				funding = sats
			}
		}
		v.acceptAnnouncement(ctx, j, k1, k2, funding)
	case KindChannelUpdate:
		v.update(ctx, j)
	case KindNodeAnnouncement:
		key, err := btcec.ParsePubKey(p.node.NodeID[:])
		if err != nil || !p.verify(p.node.Signature, key) {
			v.reject(j, ReasonBadSignature)
			return
		}
		v.mu.Lock()
		if v.nodeChans[p.node.NodeID] == 0 {
			v.parkLocked(j, p.node.NodeID)
			v.mu.Unlock()
			return
		}
		recs := v.acceptLocked(j, p.nodeRecord())
		v.mu.Unlock()
		v.submitLogged(ctx, recs)
		v.done(1)
	}
}

// stateless applies the checks that need no other message.
func (v *Validator) stateless(j job) Reason {
	p := j.p
	switch p.kind {
	case KindChannelAnnouncement:
		if p.ann.ChainHash != v.cfg.ChainHash {
			return ReasonWrongChain
		}
		if cmp33(p.ann.NodeID1, p.ann.NodeID2) >= 0 {
			return ReasonNodeOrder
		}
		return ReasonOK
	case KindChannelUpdate:
		u := p.upd
		if u.ChainHash != v.cfg.ChainHash {
			return ReasonWrongChain
		}
		if !u.MessageFlags.HasMaxHtlc() {
			return ReasonMissingHTLCMax
		}
		if u.HtlcMaximumMsat > maxHTLCMsat {
			return ReasonHTLCMaxInvalid
		}
	}
	ts := time.Unix(int64(p.timestamp()), 0)
	switch {
	case ts.After(j.msg.At.Add(maxAhead)):
		return ReasonTooNew
	case ts.Before(j.msg.At.Add(-maxBehind)):
		return ReasonTooOld
	}
	return ReasonOK
}

func cmp33(a, b [33]byte) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// update validates a channel update against its channel, or parks it.
func (v *Validator) update(ctx context.Context, j job) {
	u := j.p.upd
	scid := u.ShortChannelID.ToUint64()
	dir := int(u.ChannelFlags & 1)
	v.mu.Lock()
	ch := v.channels[scid]
	if ch == nil {
		v.parkLocked(j, [33]byte{})
		v.mu.Unlock()
		return
	}
	key := ch.keys[dir]
	id := ch.ids[dir]
	funding, known := ch.fundingSats, ch.fundingKnown
	v.mu.Unlock()
	if key == nil {
		var err error
		if key, err = btcec.ParsePubKey(id[:]); err != nil {
			v.reject(j, ReasonBadSignature)
			return
		}
		v.mu.Lock()
		ch.keys[dir] = key
		v.mu.Unlock()
	}
	if !j.p.verify(u.Signature, key) {
		v.reject(j, ReasonBadSignature)
		return
	}
	if known && uint64(u.HtlcMaximumMsat) > funding*1000 {
		v.reject(j, ReasonHTLCMaxOverCapacity)
		return
	}
	v.mu.Lock()
	recs := v.acceptLocked(j, j.p.updateRecord())
	v.mu.Unlock()
	v.submitLogged(ctx, recs)
	v.done(1)
}

// acceptAnnouncement records a verified channel announcement and releases
// what waited for it.
func (v *Validator) acceptAnnouncement(ctx context.Context, j job, k1, k2 *btcec.PublicKey, fundingSats uint64) {
	a := j.p.ann
	scid := a.ShortChannelID.ToUint64()
	v.mu.Lock()
	if ch, ok := v.channels[scid]; ok {
		// The channel is known: stored by an earlier run, or announced with
		// other bytes. The first announcement counts; a copy of it still
		// earns its senders their receipts.
		var recs []persistence.Record
		if ch.ids == [2][33]byte{a.NodeID1, a.NodeID2} {
			j.entry.state = stateAccepted
			for _, d := range j.entry.peers {
				recs = append(recs, receipt(j.msg.Wire, d))
			}
		} else {
			j.entry.state = stateRejected
			j.entry.reason = ReasonDuplicate
		}
		v.Count(nil, KindChannelAnnouncement, ReasonDuplicate)
		v.mu.Unlock()
		v.submitLogged(ctx, recs)
		v.done(1)
		return
	}
	v.channels[scid] = &channel{keys: [2]*btcec.PublicKey{k1, k2}, ids: [2][33]byte{a.NodeID1, a.NodeID2},
		fundingSats: fundingSats, fundingKnown: fundingSats > 0}
	rec := j.p.announcementRecord()
	rec.FundingSats, rec.FundingKnown = fundingSats, fundingSats > 0
	recs := v.acceptLocked(j, rec)
	var nodes []pending
	for _, id := range [2][33]byte{a.NodeID1, a.NodeID2} {
		v.nodeChans[id]++
		nodes = append(nodes, v.waitNode[id]...)
		delete(v.waitNode, id)
	}
	upds := v.waitUpd[scid]
	delete(v.waitUpd, scid)
	for _, p := range nodes {
		v.unparkLocked(p)
	}
	for _, p := range upds {
		v.unparkLocked(p)
	}
	// Released messages are outstanding again until they get a verdict.
	v.outstanding += len(nodes) + len(upds)
	for _, p := range nodes {
		recs = append(recs, v.acceptLocked(p.job, p.job.p.nodeRecord())...)
	}
	if v.cfg.Waiting != nil {
		v.outstanding++ // the release below
	}
	v.mu.Unlock()
	// The announcement is queued before the updates it released.
	v.submitLogged(ctx, recs)
	v.done(1 + len(nodes))
	for _, p := range upds {
		v.update(ctx, p.job)
	}
	if v.cfg.Waiting != nil {
		go v.release(ctx, scid, [2][33]byte{a.NodeID1, a.NodeID2})
	}
}

// unparkLocked counts p out of the waiting room.
func (v *Validator) unparkLocked(p pending) {
	v.nPending--
	p.job.msg.From.waiting--
}

// parkLocked puts a message in the waiting room, or drops it when the room,
// or its source's share of it, is full.
func (v *Validator) parkLocked(j job, node [33]byte) {
	if v.nPending >= v.cfg.PendingMax || j.msg.From.waiting >= v.cfg.PendingPerSource {
		r := ReasonUnknownChannel
		if j.p.kind == KindNodeAnnouncement {
			r = ReasonNoChannel
		}
		v.rejectLocked(j, r)
		return
	}
	var deadline time.Time
	if v.cfg.PendingTimeout > 0 {
		deadline = v.cfg.Now().Add(v.cfg.PendingTimeout)
	}
	pd := pending{job: j, deadline: deadline}
	if j.p.kind == KindNodeAnnouncement {
		v.waitNode[node] = append(v.waitNode[node], pd)
	} else {
		scid := j.p.upd.ShortChannelID.ToUint64()
		v.waitUpd[scid] = append(v.waitUpd[scid], pd)
	}
	v.nPending++
	j.msg.From.waiting++
	v.doneLocked(1)
}

func (v *Validator) reject(j job, r Reason) {
	v.mu.Lock()
	v.rejectLocked(j, r)
	v.mu.Unlock()
}

// rejectLocked gives an outstanding message its verdict.
func (v *Validator) rejectLocked(j job, r Reason) {
	v.verdictLocked(j, r)
	v.doneLocked(1)
}

// verdictLocked records why a message is dropped; parked messages, which
// are no longer outstanding, get theirs this way.
func (v *Validator) verdictLocked(j job, r Reason) {
	j.entry.state = stateRejected
	j.entry.reason = r
	j.entry.peers = nil
	if r.garbage() {
		// Garbage is not remembered: a flood of distinct junk must not
		// grow the filter. Repeats are checked again, and counted again
		// against their sender.
		delete(v.seen[0], j.hash)
		delete(v.seen[1], j.hash)
	}
	v.Count(j.msg.From, j.p.kindOr(j.msg.Wire), r)
}

func (p *parsed) kindOr(wire []byte) Kind {
	if p != nil {
		return p.kind
	}
	return kindOf(uint16(wire[0])<<8 | uint16(wire[1]))
}

// acceptLocked marks a message valid and returns its record and receipts.
func (v *Validator) acceptLocked(j job, rec persistence.Record) []persistence.Record {
	j.entry.state = stateAccepted
	switch r := rec.(type) {
	case *persistence.ChannelAnnouncement:
		r.ReceivedAt = j.msg.At
	case *persistence.ChannelUpdate:
		r.ReceivedAt = j.msg.At
	case *persistence.NodeAnnouncement:
		r.ReceivedAt = j.msg.At
	}
	recs := []persistence.Record{rec}
	for _, d := range j.entry.peers {
		recs = append(recs, receipt(j.msg.Wire, d))
	}
	v.Count(nil, j.p.kind, ReasonOK)
	j.msg.From.accepted.Add(1)
	return recs
}

// done marks n accepted messages finished once their records are queued,
// so Drain never returns before the writer has them.
func (v *Validator) done(n int) {
	v.mu.Lock()
	v.doneLocked(n)
	v.mu.Unlock()
}

// submitLogged queues recs for the writer. What cannot be queued (the
// writer closed at shutdown) is counted and reported once by Stop.
func (v *Validator) submitLogged(ctx context.Context, recs []persistence.Record) {
	if err := v.submitRecords(ctx, recs); err != nil {
		v.notQueued.Add(1)
	}
}

func (v *Validator) submitRecords(ctx context.Context, recs []persistence.Record) error {
	for _, r := range recs {
		if err := v.writer.Submit(ctx, r); err != nil {
			return fmt.Errorf("submit record: %w", err)
		}
	}
	return nil
}

// Channels returns how many channels are known.
func (v *Validator) Channels() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.channels)
}
