// Package persistence owns lnsync's Postgres database: connecting, applying the
// embedded migrations, writing validated gossip in batches, reading it back for
// the lookup and the metrics, and pruning old history.
//
// Everything written here has already been validated by the downloader; this
// package never parses or trusts peer input itself. Callers never see pgx
// errors: they are translated to this package's sentinel errors at the
// boundary.
package persistence
