// Package snapshot computes RGS snapshot generations on a schedule and
// publishes them atomically; its Catalog holds the published generation in
// memory for the HTTP API.
//
// # Runs
//
// A run at reference time R (a multiple of the interval, itself a multiple of
// the 3-hour Grid, aligned to the Unix epoch in UTC) computes, from the rows
// stored before R, one delta per scope — the interval doubled until a scope
// reaches 21 days (3h, 6h, …, 32d by default) — plus the full snapshot and
// the empty delta, and encodes each in format versions 1 and 2. Every header
// is R. The Scheduler waits for the caught-up signal, runs at once for the
// current grid point (unless it already has a generation), then fires Delay
// after every interval boundary through a robfig/cron schedule. Runs are
// serialised with an flock on DIR/.lock, so `lnsync snapshot` and `lnsync
// serve` may share a directory. A run for an R older than the published one
// is refused. A failed run changes nothing on disk that readers use; it is
// logged, counted in lnsync_snapshot_runs_total{result="error"} and flagged
// in lnsync_snapshot_last_run_failed, and the next boundary tries again.
//
// # Layout
//
//	DIR/.lock
//	DIR/current -> generations/<R>-<nanos>       symlink, replaced by rename
//	DIR/generations/<R>-<nanos>/
//	    manifest.json                              written last
//	    v1/scope-3h.bin  v1/scope-3h.bin.gz  …  v1/full.bin(.gz)  v1/empty.bin(.gz)
//	    v2/…                                       same names, format version 2
//	    static/{ts}.bin(.gz)     -> ../v1/<file>   one name per grid point
//	    static/v2/{ts}.bin(.gz)  -> ../../v2/<file>
//
// The static tree is relative symlinks inside the generation, so a plain
// static server (nginx with gzip_static, a CDN origin) serves
// DIR/current/static/ under /snapshot/ with the same answers as the HTTP API
// for every name it has: 0 (full), every 3-hour grid point from Epoch (2022-01-01
// by default) up to R (the narrowest scope reaching back to it, or full), and
// R itself (the empty delta, in both versions). It cannot answer a timestamp
// off the grid or after R; the HTTP API can.
//
// # Compression
//
// Every distinct file is compressed once, on all cores, with klauspost's
// gzip at GzipLevel: 9 for files up to 256 KiB (the frequently fetched
// incremental ones), 7 above (under 1% larger than the standard library's
// -9 on a mainnet full snapshot, 14 times faster). A file with the same
// bytes as an earlier one (in a quiet network the widest scopes equal the
// full snapshot) is a hard link to it, with its gzip sibling: written once,
// still a regular file.
//
// # Atomicity
//
// A generation is built in generations/.tmp-<name>: every file and its gzip
// sibling is written and fsynced, then the static links, then manifest.json,
// then the directories are fsynced; the directory is renamed to its final
// name and the current link is replaced by renaming a new symlink over it,
// each rename followed by an fsync of the parent. A reader following current
// therefore sees a complete generation, old or new, never a mix; a process
// killed at any point leaves the previous generation current, and the next
// run removes the leftovers (temporary directories, and generations renamed
// but never made current). A superseded generation is removed once its
// successor is older than Grace (one hour by default), so static readers
// finish in-flight responses.
//
// # Manifest
//
// manifest.json records R, the interval, the chain hash, the creation time,
// the run's duration, the static tree's epoch and size, and for every file its
// version, kind, scope, start time L, size, SHA-256 (ETag source) and that of
// its gzip sibling, counts and compute time. Manifest.Pick maps a client
// timestamp to a file; the static tree and the HTTP API both use it.
//
// The package never writes to the database and never reads outside its
// directory; it does not serve HTTP.
package snapshot
