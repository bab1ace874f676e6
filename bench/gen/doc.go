// Package gen generates a deterministic, validly signed gossip history of
// mainnet size for benchmarks: the topology of a Core Lightning mainnet
// snapshot under generated keys, then days of channel_updates and
// node_announcements at the rates, per-sender frequencies and field-change
// mix measured on mainnet, written as GSP files with receive times (see
// package gsp).
//
// Sources, all read from the repository's testdata directory (each folder
// has a README with its origin and licence) or recorded as tables in
// dist.go (with tests that recount them):
//   - cln-mainnet-snapshots: endpoints, capacities, per-direction policies,
//     node ids (mapped to generated keys) and aliases;
//   - gossip-observer-2025: message rates by type and the
//     per-SCID and per-node message-count distributions;
//   - lnconv-2021: which fields change between consecutive
//     channel_updates, and the delay from timestamp to receipt;
//   - lnresearch-gsp-2025: address-type mix, node feature vectors and the
//     inbound-fee TLV share.
//
// # Output
//
// Generate writes into one directory:
//   - initial.gsp: the graph as of Params.Start in the order a full sync
//     delivers it (each channel_announcement followed by its two latest
//     channel_updates, by scid, then one node_announcement per node), all
//     with receive time Start; update and node timestamps lie in the
//     preceding 13 days, as each sender's activity implies;
//   - day-001.gsp …: one file per day of receive time, in receive-time
//     order, every message seconds to minutes after its timestamp; the
//     last file also holds the few messages received after the last day;
//   - channels.csv: scid, capacity (the funding amount) and keys of every
//     channel, for a fake chain backend;
//   - manifest.json: parameters, targets and per-file counts.
//
// Per (scid, direction) and per node, timestamps and receive times both
// increase strictly, every channel_update is received after its channel's
// announcement and every node_announcement after one of its node's
// channels. Channels that open during the history get a fresh
// announcement and both updates; closing ones fall silent, half of them
// after a final disabling update.
//
// Output for the same Params and datasets is byte-identical whatever the
// number of signing goroutines. The package never reads the network and
// never writes outside the output directory it is given.
package gen
