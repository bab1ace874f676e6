// Package gsp reads and writes GSP v1 files: a stream of Lightning gossip
// messages (BOLT 7) as produced by the lnresearch gossip archive.
//
// # Format
//
// A file starts with the four bytes "GSP" 0x01. Records follow until the end
// of the file. Each record is a length N followed by N bytes holding one
// complete wire message, starting with its 2-byte big-endian type. The length
// is a BOLT BigSize: one byte below 0xFD is the length itself; 0xFD, 0xFE and
// 0xFF announce a big-endian uint16, uint32 and uint64. (Upstream prose calls
// it "CompactSize", but the archive files are big-endian.)
//
// # Receive times
//
// GSP v1 has no receive time. This package adds one without leaving the
// format: a record whose wire type is TypeReceiveTime (0xFFFD, an odd and
// therefore optional custom type, so a GSP reader that follows BOLT 1's
// "it's ok to be odd" ignores it) and whose 8-byte payload is a big-endian
// unsigned unix time in microseconds. The time applies to every message that
// follows, up to the next such record. The value 0 means "no receive time".
// A time record is exactly 10 bytes long (type + u64), so its framed form is
// 0x0A 0xFF 0xFD followed by the eight time bytes.
//
// Reader consumes time records and reports the time on each Record;
// Writer emits one only when the receive time changes.
//
// # Glitches
//
// Some archive files contain a stray or a missing length byte. A strict
// Reader stops with ErrFraming there. With Reader.Resync set, the reader
// skips forward to the next plausible record (a known gossip type whose
// length matches that type's structure, followed by the end of the file or
// by another plausible record header) and counts what it skipped in
// Reader.Skipped.
//
// The package frames messages; it never validates signatures or interprets
// fields beyond what plausibility needs.
package gsp
