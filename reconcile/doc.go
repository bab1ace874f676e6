// Package reconcile turns lnsync's per-peer receipts into the propagation
// metrics and set-reconciliation estimates that researchers use to judge
// whether Erlay-style reconciliation (PinSketch) could replace gossip flooding
// in Lightning.
//
// # What the package owns
//
//   - The in-memory receipt set of a window (Window: each message's first
//     sighting, type, size and every peer's first delivery) and the pure
//     functions over it: Summarize, Report and Estimate. They do no I/O, so
//     tests check them exactly against brute-force computations.
//   - The loader that streams a window from the receipts table (binary rows,
//     by time range on the partitioned table) together with peer sessions and
//     the gossip fields (timestamp, SCID, node) linked by message hash.
//   - The hourly pre-aggregates of migration 0002 and the Aggregator job that
//     fills them for closed hours, idempotently, so long windows are answered
//     from a few hundred thousand rows per day instead of raw receipts.
//   - The HTTP handlers under /v1/reconciliation/ and the Prometheus gauges of
//     the headline figures.
//
// # Definitions
//
// A message's first sighting f(h) is the earliest receipt of h; receipts later
// than f(h)+Horizon are ignored everywhere (gossip_observer's rule), so a
// message that is relayed again hours later counts as a new sighting. A window
// [from, to) holds the messages whose first sighting falls in it. The metric
// definitions are those of the observer notes §3.3; Report's field comments
// say which are exact from the aggregates and which are bucketed.
//
// # Raw receipts and aggregates
//
// Windows up to Config.MaxRawWindow are computed from raw receipts, longer
// ones from the aggregates (hours not aggregated yet are summarised on
// request, up to the same bound). Every propagation metric is exact from the
// aggregates (see Report for the two caveats); sketch estimates need each
// peer's delivery times and therefore raw receipts, so they are bounded by
// retention.receipts and by Config.MaxEstimateWindow.
//
// # What it must never do
//
// The package only reads receipts and gossip, and writes only its own
// aggregate tables. It never changes what the downloader stores, never keeps a
// context in a struct, and bounds the work of every request: windows, rounds
// and sketch sizes beyond the configured limits are refused with a message
// rather than computed slowly.
package reconcile
