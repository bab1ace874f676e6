// Package harness runs lnsync's mainnet-scale benchmark (`make bench`): it
// loads a generated history (package gen) into a fresh database, then
// measures ingestion through a load peer, a full snapshot run, dynamic
// delta latency, snapshot sizes and HTTP serving against nginx, and reports
// every figure next to what it is compared with.
//
// # Loading and measuring
//
// A history of mainnet size holds about six million signed messages, and
// checking their signatures alone takes longer on two cores than the
// benchmark may. So the history is stored by LoadTrusted, which decodes
// each message and writes it through persistence.Writer without the
// validator, re-verifying the signatures of a sample (the generator signed
// every message; the sample proves the files are its output). Validation is
// measured where it belongs: Ingest streams the first day of the same
// history, from a full sync onwards, from a real BOLT 8 load peer through
// lnsync's downloader (handshake, decoding, chain and time rules, every
// signature, duplicate filter, batched writes with receipts) into a second
// database.
//
// # What it must never do
//
// It never listens or dials beyond loopback, never touches a database other
// than the ones it is given, and never reports a figure without saying what
// it was measured against.
package harness
