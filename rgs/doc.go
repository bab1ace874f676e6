// Package rgs owns the Rapid Gossip Sync (RGS) byte format, versions 1 and 2: the
// files that LDK clients fetch and apply to their network graph in one step.
//
// Two views of a file exist. A Delta is the semantic, index-free content that the
// lookup layer produces: channel announcements, channel updates (full, incremental,
// reminder) and, in version 2, node data. Delta.Encode turns it into bytes with a
// deterministic encoder: the same Delta always yields the same bytes. A File is the
// wire-level content that Decode reads back: node table with flag bytes, indices,
// resolved short channel ids, defaults, raw flag bytes and forward-compatibility
// data. File.Delta recovers the semantic view.
//
// Deterministic choices the encoder makes (the reference server leaves them to
// hash-map order):
//
//   - The node table lists nodes in order of first appearance while walking the
//     announcements by ascending SCID (node_1, then node_2); in version 2 nodes that
//     only carry node data follow, sorted by their 33-byte key.
//   - Each update default is the most frequent value of that field among the full
//     updates; ties go to the smallest value; 0 when there is no full update.
//   - Version 2 default node features are the feature encodings used by more than
//     one node entry, most used first, ties to the lexicographically smallest
//     encoding, at most six.
//   - Addresses are written in the order given.
//
// The encoder refuses input that a current client would reject as a whole (for
// example an announcement whose node_id_1 is not strictly below node_id_2) rather
// than produce a file that makes wallets lose their graph. The decoder never
// panics, bounds every allocation by the bytes actually present, and rejects
// everything an LDK client rejects on the bytes alone, with sentinel errors usable
// with errors.Is.
//
// This package does no I/O besides the optional io.Writer of Delta.EncodeTo, holds
// no global state and knows nothing about databases or gossip peers.
package rgs
