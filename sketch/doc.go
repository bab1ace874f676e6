// Package sketch implements PinSketch set sketches over GF(2^b), 2 ≤ b ≤ 64,
// byte-compatible with libminisketch (github.com/sipa/minisketch) and, for
// b = 32, with the sketches of BIP-330 (Erlay).
//
// A sketch of capacity c summarises a set of nonzero b-bit elements in b·c
// bits. Two parties that each sketch their own set can add (Merge) the
// sketches to get the sketch of the symmetric difference, and decode it to
// recover the differing elements as long as there are at most c of them,
// whatever the size of the sets themselves. lnsync uses sketches to estimate
// and test set reconciliation of Lightning gossip.
//
// # What the package owns
//
//   - Field arithmetic in GF(2^b) for every b in [MinBits, MaxBits], in the
//     polynomial basis of the same irreducible polynomials as libminisketch
//     (the lowest-weight one per degree; for b = 32 it is
//     x^32 + x^7 + x^3 + x^2 + 1, as in BIP-330).
//   - The sketch itself: Add, Merge, Serialize/Deserialize in libminisketch's
//     bit-packed format, and Decode by Berlekamp–Massey plus Berlekamp-trace
//     root finding.
//   - Capacity planning: ComputeCapacity and ComputeMaxElements reproduce
//     libminisketch's formulas for a false-positive bound of 2^−fpbits.
//
// # What it must never do
//
// The package is pure computation over caller-supplied values: no I/O, no
// logging, no goroutines, no global mutable state and no dependencies outside
// the standard library. It does not choose element IDs: hashing messages or
// short channel IDs into [1, 2^b−1] (and salting them against collisions) is
// the caller's job. It must never change a modulus or the serialization, which
// would silently break interoperability with other implementations.
//
// # Correctness and false positives
//
// A sketch holding at most min(maxElements, capacity) elements always decodes
// to exactly that set. A sketch holding more usually fails with
// ErrDecodeFailed, but it can instead look like the sketch of a different,
// smaller set: for a random-looking sketch of capacity c decoded for up to m
// elements this happens with probability Σ_{k≤m} C(2^b−1, k) / 2^(b·c), about
// 1/c! when m = c and b·c is large. Size sketches with ComputeCapacity to keep
// this below 2^−fpbits, and treat decoded elements that neither side knows as
// a sign of failure. Decode accepts a result only if the locator polynomial
// splits into distinct nonzero roots in GF(2^b) and those roots re-create the
// sketch exactly.
//
// # Performance
//
// Go has no carry-less multiply intrinsic, so general products use ordinary
// 64-bit multiplications on operands with gaps between their bits, and long
// runs of products by one factor (Add with large capacities, polynomial
// reduction while decoding) use byte-indexed tables. Add costs O(c); Decode
// costs O(c²) for Berlekamp–Massey plus O(b·n²) for finding the n roots, so a
// full 64-bit sketch of capacity 4096 takes seconds to decode. Keep
// capacities small, as Erlay does, and split large differences.
package sketch
