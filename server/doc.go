// Package server is lnsync's HTTP API: snapshot and dynamic sync for RGS
// clients, health and readiness for operators, Prometheus metrics, and the
// researchers' endpoints.
//
// Handlers return errors; one adapter maps them to a status and a short
// message, with details only in the log. The server never writes to the
// database and never reads outside the directories it is given; sync answers
// come from the generation a snapshot.Catalog holds in memory, picked by the
// parsed timestamp, so no filesystem path is ever built from a request.
//
// # Sync routes
//
// GET and HEAD /snapshot/{ts} (format version 1) and /snapshot/v2/{ts}, where
// {ts} is the client's last sync time in Unix seconds, optionally with ".bin",
// and a doubled slash before it is tolerated:
//
//   - 0: the full snapshot; ts >= R (the served generation's reference
//     time): the empty delta stamped R (Cache-Control max-age=60); otherwise
//     the narrowest precomputed scope reaching back to ts, which serves a ts
//     off the 3-hour grid as if rounded down, or the full snapshot when ts is
//     older than every scope. Headers are stamped R in every case.
//   - A ts that is not decimal digits (negative, hex, "..%2f…") or does not
//     fit a u32 is 400 with a one-line message; before the first generation
//     every ts is 503 with Retry-After.
//
// GET and HEAD /dynamic/{ts} and /dynamic/v2/{ts} answer with the exact delta
// from ts rounded down to the 3-hour grid to R, computed on request with
// bounded concurrency (Options.DynamicConcurrency), one computation per key,
// and cached per grid point until the next generation (at most 512 entries,
// 256 MiB). What the generation already holds is served from it: 0, ts >= R,
// a grid point where a scope starts, and a ts older than every scope (the
// full snapshot), which bounds the keys to the grid points of the widest
// scope. A request that waits more than 10 s for a computation slot gets 503.
//
// Every sync answer carries Content-Type application/octet-stream,
// Content-Length, a strong ETag (SHA-256 of the bytes sent) and Last-Modified
// (the generation's creation time), honours If-None-Match and
// If-Modified-Since with 304, sends the gzip file precompressed at snapshot
// time when Accept-Encoding admits gzip (Vary: Accept-Encoding), and is
// cacheable publicly until the next generation is due (at least 60 s). No
// answer is immutable: the answer for a ts changes with each generation, and
// a stale one is still a correct step towards the newest data.
//
// # Operator routes
//
// /healthz is 200 while the process serves. /readyz is 200 only when the
// Ready check passes, the downloader has caught up and the served generation
// is younger than two intervals and holds channels (a client would get a
// useful graph), else 503 with the reason. /v1/status is a
// JSON summary: network, caught-up and ready state, connected peers, stored
// message counts and the served generation. /metrics is Prometheus. All of
// them are no-store; every route allows cross-origin GET.
package server
