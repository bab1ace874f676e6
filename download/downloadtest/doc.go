// Package downloadtest brings up a small, real Lightning network on loopback
// for integration tests of the gossip downloader: one btcd in regtest mode and
// a few lnd nodes connected in a line (A–B–C by default) with public channels
// whose announcements, updates and node announcements have propagated to every
// node.
//
// The package owns the life of every process it starts: each one runs with its
// data, logs and HOME under the test's t.TempDir, listens only on 127.0.0.1
// ports chosen at start, and is stopped by PID (SIGTERM, then SIGKILL) in
// t.Cleanup. It never listens on a non-loopback address and never skips a
// test: when the binaries cannot be found or built, or the network does not
// come up, the test fails with the tail of the relevant log. Child processes
// get a HOME under the temporary directory; the one thing btcd insists on
// creating in the real home, an empty ~/.btcd, is removed again if it was not
// there before.
//
// The btcd, lnd and lncli binaries come from the directory named by the
// LNSYNC_REGTEST_BIN environment variable or, when it is unset, from
// scripts/regtest-bins.sh, which builds pinned versions once into the
// user's cache (~/.cache/lnsync/regtest/). The first build takes minutes;
// later runs reuse the binaries.
//
// Nodes are driven through lncli and its JSON output, so tests see the graph as
// lnd reports it, independent of lnd's Go API.
//
// A bring-up takes about a minute on two cores, so a package should start one
// network per test function and share it between subtests:
//
//	func TestDownloadFromLND(t *testing.T) {
//		nw := downloadtest.StartNetwork(t, downloadtest.Options{})
//		a := nw.Nodes[0]
//		// Dial a.Addr as a.PubKeyBytes over BOLT 8, send init with the
//		// data_loss_protect and gossip_queries bits, then
//		// gossip_timestamp_filter for downloadtest.RegtestChainHash.
//		want, err := a.DescribeGraph(t.Context())
//		…
//	}
//
// Run such tests with a go test -timeout that leaves room for the first build
// (-timeout 30m), or run scripts/regtest-bins.sh beforehand.
package downloadtest
