// Command lnsync-gen writes a deterministic, validly signed gossip history
// of a chosen size (see package gen) as GSP files plus a manifest.
//
//	lnsync-gen -scale mainnet -days 14 -out /tmp/hist
//
// The same flags always produce byte-identical files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lnsync/lnsync/bench/gen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lnsync-gen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lnsync-gen", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "seed of every random choice and generated key")
	scale := fs.String("scale", "small", "channel count, or a preset: tiny (300), small (3000), mainnet (whole snapshot), 3x (three copies)")
	days := fs.Int("days", 1, "days of history after the initial graph")
	out := fs.String("out", "", "output directory (required)")
	chain := fs.String("chain", "mainnet", "chain hash in every message: mainnet or regtest")
	topo := fs.String("topology", "2024", "CLN snapshot: 2024 (59,428 channels) or 2026 (50,808 channels)")
	start := fs.Int64("start", gen.DefaultStart, "unix time at which the history starts (default 2024-09-22 00:00 UTC)")
	datasets := fs.String("datasets", "testdata", "directory holding the source datasets (the repository's testdata/)")
	nodeMap := fs.Bool("nodemap", true, "read real node ids and aliases from the xz node map (needs the xz command)")
	workers := fs.Int("workers", 0, "signing goroutines (0 = GOMAXPROCS); never changes the output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("-out is required")
	}
	hash, ok := gen.Chains[*chain]
	if !ok {
		return fmt.Errorf("-chain %q: want mainnet or regtest", *chain)
	}
	if *days < 0 {
		return fmt.Errorf("-days %d: must not be negative", *days)
	}

	began := time.Now()
	t, err := gen.LoadTopology(ctx, *datasets, *topo, *nodeMap)
	if err != nil {
		return err
	}
	scidFreq, nodeFreq, err := gen.LoadFrequencies(*datasets)
	if err != nil {
		return err
	}
	channels, err := gen.ResolveScale(*scale, len(t.Channels))
	if err != nil {
		return err
	}
	p := gen.Params{Seed: *seed, Channels: channels, Days: *days, Start: *start, Chain: hash, Workers: *workers}
	n, err := gen.Build(t, scidFreq, nodeFreq, p)
	if err != nil {
		return err
	}
	built := time.Now()
	m, err := gen.Generate(ctx, n, *out)
	if err != nil {
		return err
	}
	done := time.Now()

	fmt.Fprintf(stdout, "topology %s: %d channels, %d nodes (%d copies); %d opened, %d closed during the history\n",
		m.Topology, m.Channels, m.Nodes, m.Copies, m.ChannelsOpened, m.ChannelsClosed)
	var bytes int64
	for _, f := range m.Files {
		bytes += f.Bytes
		fmt.Fprintf(stdout, "%-14s %11d bytes  ca %6d  cu %8d  na %8d\n",
			f.Name, f.Bytes, f.ChannelAnnouncements, f.ChannelUpdates, f.NodeAnnouncements)
	}
	fmt.Fprintf(stdout, "total          %11d bytes  ca %6d  cu %8d  na %8d  keep-alives %d\n",
		bytes, m.Totals.ChannelAnnouncements, m.Totals.ChannelUpdates, m.Totals.NodeAnnouncements, m.Totals.KeepAlives)
	fmt.Fprintf(stdout, "targets per day: channel_updates %.0f, node_announcements %.0f\n", m.TargetUpdates, m.TargetNodeAnns)
	fmt.Fprintf(stdout, "time: build %v, generate %v, total %v\n",
		built.Sub(began).Round(time.Millisecond), done.Sub(built).Round(time.Millisecond), done.Sub(began).Round(time.Millisecond))
	return nil
}
