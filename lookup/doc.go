// Package lookup turns the stored gossip history into the delta an RGS client
// needs: given the client's last sync time L and a reference time C, which
// channels to announce, which channel directions to send as full, incremental
// or reminder updates, and (for format version 2) which node data.
//
// It keeps an in-memory Index of the history, filled from Postgres and kept
// current by reading only new rows, so that one delta costs a pass over the
// channels rather than a scan of the history. Every delta is computed from
// the rows with seen < C only, after making sure all of them have been read,
// so the same (L, C) always gives the same delta and nothing stored before C
// can fall between two consecutive deltas.
//
// It never writes gossip and never encodes bytes itself: it fills an
// rgs.Delta, which package rgs encodes.
package lookup
