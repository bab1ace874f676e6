package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"path/filepath"
	"slices"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/bench/gen"
	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/gsp"
)

// TestShippedSeedsAreMainnetNodes checks that config.toml's peers are the
// built-in mainnet seeds and that each is a real, large mainnet node at
// the address it announces itself: a node_announcement of the real signed
// capture in testdata, signed by that key, lists the seed's host:port, and
// the node holds hundreds of channels in both whole-network topologies.
func TestShippedSeedsAreMainnetNodes(t *testing.T) {
	cfg, err := config.Load(filepath.Join("..", "..", "config.toml"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Download.Peers, config.MainnetSeeds) {
		t.Fatalf("config.toml peers %q, want the mainnet seeds %q", cfg.Download.Peers, config.MainnetSeeds)
	}
	if len(cfg.Peers()) < 3 {
		t.Fatalf("%d seeds; a stranger's first run needs several", len(cfg.Peers()))
	}

	// Every address each seed announced, with a verified signature.
	seed := map[[33]byte]bool{}
	for _, p := range cfg.Peers() {
		seed[p.PubKey] = true
	}
	announced := map[[33]byte][]string{}
	path := filepath.Join(datasetsDir, "lnresearch-gsp-2025", "lnresearch-2025-merged.gsp")
	err = gsp.ReadFile(path, func(r gsp.Record) error {
		m, err := lnwire.ReadMessage(bytes.NewReader(r.Msg), 0)
		if err != nil {
			return nil // the capture's other message types
		}
		na, ok := m.(*lnwire.NodeAnnouncement)
		if !ok || !seed[na.NodeID] {
			return nil
		}
		data, err := na.DataToSign()
		if err != nil {
			return err
		}
		key, err := btcec.ParsePubKey(na.NodeID[:])
		if err != nil {
			return err
		}
		var sr, ss btcec.ModNScalar
		sr.SetByteSlice(r.Msg[2:34])
		ss.SetByteSlice(r.Msg[34:66])
		if !ecdsa.NewSignature(&sr, &ss).Verify(chainhash.DoubleHashB(data), key) {
			t.Errorf("node_announcement of %x: signature does not verify", na.NodeID)
			return nil
		}
		for _, a := range na.Addresses {
			announced[na.NodeID] = append(announced[na.NodeID], a.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	channels := map[string]map[[33]byte]int{}
	for _, name := range []string{"2024", "2026"} {
		topo, err := gen.LoadTopology(context.Background(), datasetsDir, name, true)
		if err != nil {
			t.Fatal(err)
		}
		deg := map[[33]byte]int{}
		for _, c := range topo.Channels {
			deg[topo.Nodes[c.Nodes[0]].ID]++
			deg[topo.Nodes[c.Nodes[1]].ID]++
		}
		channels[name] = deg
	}

	for _, p := range cfg.Peers() {
		id := hex.EncodeToString(p.PubKey[:])
		if !slices.Contains(announced[p.PubKey], p.Addr) {
			t.Errorf("seed %s: its signed node_announcements list %q, not %s", id, announced[p.PubKey], p.Addr)
		}
		for name, deg := range channels {
			if n := deg[p.PubKey]; n < 400 {
				t.Errorf("seed %s: %d channels in the %s mainnet topology, want a large node (≥ 400)", id, n, name)
			}
		}
	}
}
