package download_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/lnsync/lnsync/conformance"
	"github.com/lnsync/lnsync/download/downloadtest"
	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/rgs"
)

var sprintf = fmt.Sprintf

// checkLDKSnapshot builds a full RGS snapshot from what the downloader
// stored, applies it with LDK's client and compares the result with lnd's
// graph.
func checkLDKSnapshot(t *testing.T, env *liveEnv, n *downloadtest.Node, chain [32]byte) {
	t.Helper()
	ctx := t.Context()
	if err := env.writer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	idx := lookup.NewIndex(env.store, chain, persistencetest.Logger(t))
	ref := time.Now()
	snap, _, err := idx.Encode(ctx, time.Time{}, ref, rgs.Version2)
	if err != nil {
		t.Fatal(err)
	}
	network, err := conformance.NetworkFor(chain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := conformance.ApplyLDK(ctx, network, [][]byte{snap}, uint64(ref.Unix()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 1 || !got.Results[0].OK {
		t.Fatalf("LDK rejected the snapshot: %+v", got.Results)
	}
	want, err := n.DescribeGraph(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Channels) != len(want.Channels) || len(got.Nodes) != len(want.Nodes) {
		t.Errorf("LDK graph has %d channels and %d nodes, lnd %d and %d", len(got.Channels), len(got.Nodes), len(want.Channels), len(want.Nodes))
	}
	for _, ch := range want.Channels {
		var c *conformance.Channel
		for i := range got.Channels {
			if got.Channels[i].SCID == ch.ChannelID {
				c = &got.Channels[i]
			}
		}
		if c == nil {
			t.Errorf("LDK graph lacks channel %d", ch.ChannelID)
			continue
		}
		if c.NodeOne.String() != ch.Node1 || c.NodeTwo.String() != ch.Node2 {
			t.Errorf("channel %d: LDK nodes %s %s, lnd %s %s", ch.ChannelID, c.NodeOne, c.NodeTwo, ch.Node1, ch.Node2)
		}
		for dir, pair := range []struct {
			ldk *conformance.Direction
			lnd *downloadtest.Policy
		}{{c.OneToTwo, ch.Node1Policy}, {c.TwoToOne, ch.Node2Policy}} {
			l, p := pair.ldk, pair.lnd
			if l == nil || p == nil {
				t.Errorf("channel %d/%d: LDK %v, lnd %v", ch.ChannelID, dir, l, p)
				continue
			}
			if l.Enabled == p.Disabled || uint32(l.CLTVExpiryDelta) != p.TimeLockDelta || l.HTLCMinimumMsat != uint64(p.MinHTLCMsat) ||
				l.HTLCMaximumMsat != p.MaxHTLCMsat || int64(l.FeeBaseMsat) != p.FeeBaseMsat ||
				int64(l.FeeProportionalMillionths) != p.FeeRateMilliMsat {
				t.Errorf("channel %d/%d: LDK %+v, lnd %+v", ch.ChannelID, dir, *l, *p)
			}
		}
	}
	for _, wn := range want.Nodes {
		var gn *conformance.Node
		for i := range got.Nodes {
			if got.Nodes[i].NodeID.String() == wn.PubKey {
				gn = &got.Nodes[i]
			}
		}
		if gn == nil {
			t.Errorf("LDK graph lacks node %s", wn.Alias)
			continue
		}
		if gn.Announcement == nil {
			t.Errorf("LDK has no announcement for node %s", wn.Alias)
			continue
		}
		var addrs []string
		for _, a := range gn.Announcement.Addresses {
			addrs = append(addrs, a.String())
		}
		if !equalStrings(addrs, wn.Addresses) {
			t.Errorf("node %s: LDK addresses %v, lnd %v", wn.Alias, addrs, wn.Addresses)
		}
	}
	t.Logf("LDK applied a %d-byte snapshot: %d channels, %d nodes", len(snap), len(got.Channels), len(got.Nodes))
}
