//go:build race

package gen

// raceDetector reports a build with the race detector, which makes signing
// about 25 times slower: TestDeterminism then checks the concurrent signing
// on a smaller history.
const raceDetector = true
