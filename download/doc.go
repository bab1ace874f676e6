// Package download collects Lightning gossip from real peers and from GSP
// files, validates it and hands what is valid to the persistence writer. It
// is the only door into the gossip tables: everything it stores is valid,
// and everything valid a peer sends is stored, with a receipt naming the
// peer and the microsecond it arrived.
//
// # What it owns
//
//   - The Validator: the transport-independent core. Live peers and
//     `lnsync import` feed it the same Message values (exact wire bytes, a
//     receive time, a Source).
//   - The Downloader: one BOLT 8 connection per configured peer (lnd's
//     brontide, a fresh identity key per connection), init with the
//     data_loss_protect and gossip_queries bits, pongs, empty answers to the
//     peer's queries, our own gossip requests, sessions in the peers tables,
//     health figures and metrics.
//   - ImportGSP and ImportFiles: the same validation fed from GSP v1 files.
//
// It must never forward gossip (we are an observer, not a relay), never
// store a message it could not validate, and never trust a peer's clock
// for anything but the gossip timestamps it checks.
//
// # Validation
//
// Messages are decoded with lnwire; the stored bytes are the bytes
// received, so trailing TLVs a node signed (inbound fees, type 55555) are
// kept. Signatures are checked over the double SHA-256 of the received
// bytes after the signature fields, not over lnwire's re-encoding: the
// digest then covers exactly what was signed, whatever lnwire would
// normalise (unknown address types, feature padding). The rules:
//
//   - chain_hash of the configured network (wrong_chain);
//   - channel_announcement: node_id_1 < node_id_2 (node_order) and all
//     four signatures (bad_signature); with FundingREST, the output its scid
//     points to must pay the P2WSH 2-of-2 of its bitcoin keys
//     (funding_invalid), and its value becomes the stored capacity;
//   - channel_update: htlc_maximum_msat present (missing_htlc_max) and at
//     most 21 million BTC (htlc_max_invalid), and at most the capacity when
//     it is known (htlc_max_exceeds_capacity); signed by the node of its
//     direction in the channel's announcement;
//   - node_announcement: signed by its node, stored only once the node has
//     an announced channel (no_channel);
//   - timestamps at most a day ahead of the clock (too_new) and at most two
//     weeks behind it (too_old). The clock is the message's receive time:
//     the wall clock for live peers, the file's time for imports.
//
// Every delivered message gets exactly one verdict, a Reason, counted by
// kind in Verdicts and in lnsync_download_messages_total. Reasons that
// show a broken or hostile sender (malformed, oversized, unknown even
// types, wrong chain, bad signatures, node order) count as garbage against
// the peer; a connection that delivers more than GarbageLimit of them is
// closed and the peer waits BackoffMax. Late or stale messages (too_old,
// unknown_channel …) are what honest peers send too and are not garbage.
//
// # Concurrency and ordering
//
// Submit hashes the bytes and consults a duplicate filter first, so a
// message several peers send is verified once; later deliveries only add a
// receipt (one per peer). New messages go to a pool of runtime.NumCPU()
// workers through a small bounded queue: when the workers are busy, Submit
// blocks and so does the peer's read loop (TCP back-pressure), and the
// writer's bounded queue does the same further down. The workers do the
// stateless checks and the signatures; the shared state (known channels,
// nodes with channels, the waiting room) sits behind one mutex held only
// for map updates, never while verifying.
//
// An update whose channel is not known yet waits in the waiting room
// (bounded by PendingMax in count and PendingTimeout in time) instead of
// being dropped: peers send announcements and updates in any order, and
// with parallel workers an update may even overtake the announcement it
// follows. When the announcement is accepted it is queued to the writer
// first, then the updates that waited for it are verified against its keys.
// Node announcements wait the same way for a channel of their node. What
// runs out of time is counted unknown_channel or no_channel. Messages that
// cannot be checked (a channel nobody announced) never cost a signature
// check, so a flood of them costs memory bounded by PendingMax and CPU
// bounded by hashing.
//
// The duplicate filter keeps two generations of about a day each (capped
// at 2^20 messages per generation). Garbage is not remembered, so distinct
// junk cannot grow it; repeated junk is checked again and counted again.
//
// # Live peers
//
// Each configured peer has one goroutine: dial (brontide), record a
// session, exchange init, send gossip_timestamp_filter, send
// query_channel_range for all blocks and, once the reply covers the range,
// query_short_channel_ids (sorted, 8000 at a time, one query outstanding,
// as BOLT 7 asks) for the channels not known yet. The filter asks the
// first FullSyncPeers peers for the full two weeks on their first
// connection, the others for RecentWindow, and any reconnection for
// RecentWindow before the newest stored timestamp. The filter and the
// range queries overlap (lnd delivers everything twice); the duplicate
// filter absorbs that. The peer's own gossip_timestamp_filter is ignored
// and its queries get complete, empty replies: we announce nothing. A
// connection idle for IdleTimeout (no message, not even a ping) is closed.
// Reconnection waits a jittered exponential backoff between BackoffMin and
// BackoffMax, reset after a session that lasted longer than BackoffMax.
//
// Peer health follows lnd's chanfitness: every connection is a session in
// the peer_sessions table; uptime is the connected time over the time since
// the first session, and flaps are the sessions that ended. Both include
// earlier runs (read back at start, after sessions left open by a crash are
// closed).
//
// # Caught up
//
// As the reference server does (every 5 s, compare the counters of new
// channel announcements and updates with the previous tick), adapted to a
// restart that already knows its channels: caught up when fewer than 20
// new announcements and updates arrived during a tick, channels and
// updates were known at the previous tick, and more than one update has
// been accepted in all. The state never reverts; CaughtUp and WaitCaughtUp
// let /readyz and the snapshotter wait for it. An import is caught up when
// it returns.
//
// # Imports
//
// ImportGSP reads GSP v1 (see package gsp), resynchronising over framing
// glitches. Time rules use the file's clock, never the wall clock: a
// record's receive time when the file has them, or else the newest gossip
// timestamp read so far. "Newest" is made robust with a median over the
// neighbouring messages (four on each side, read ahead), so one message
// with a wild timestamp cannot move the clock while a real gap between two
// captures in one file moves it at once. The receive time stored with each
// row (the writer keeps receive times for imports) is that clock, so
// snapshots can be built as of any time the file covers. In an import the
// waiting room is bounded only in count (ImportPendingMax): file order
// decides, and messages still waiting when the last file ends are counted
// as dropped.
//
// # Funding outputs
//
// Optional (ValidatorConfig.FundingREST, off by default), as the reference
// server does through bitcoind's REST interface: blockhashbyheight, then the
// block, cached for the last few heights and fetched one at a time. Like the
// reference, spentness is not checked. An endpoint that cannot answer does
// not make a valid announcement invalid: it is stored with an unknown
// capacity and a warning. FundingBackfill later fills in the amounts of
// such channels (and of imported ones) in rounds, retrying what the chain
// could not confirm yet; it never guesses one.
// The check runs inside a signature worker, so a slow endpoint slows
// validation rather than growing memory.
//
// Not done: Tor addresses of peers (dialing goes through the system
// resolver and TCP).
package download
