// Package conformance checks lnsync's RGS files against LDK's own client.
//
// ApplyLDK runs ldk/apply.mjs under Node.js: it loads the lightningdevkit
// WebAssembly build pinned in ldk/package.json (LDK 0.1.0), applies RGS files to a
// fresh NetworkGraph with RapidGossipSync.update_network_graph_no_std, and prints
// the per-file results and the resulting graph as canonical JSON, which ApplyLDK
// parses into a Graph. Simulate computes the Graph that a list of rgs.Delta values
// is meant to produce, following the client semantics; tests compare the two field
// by field with Diff.
//
// The harness needs Node.js and `npm ci --prefix conformance/ldk`; without them
// ApplyLDK fails with an error saying so. This package is for tests and tools: it
// spawns processes and never runs inside the server.
package conformance
