package downloadtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// DefaultNodes is the number of lnd nodes when Options.Nodes is zero.
	DefaultNodes = 3
	// DefaultChannelSat is the channel capacity in satoshis when
	// Options.ChannelSat is zero.
	DefaultChannelSat = 1_000_000
	// DefaultTimeout bounds the bring-up when Options.Timeout is zero.
	DefaultTimeout = 5 * time.Minute
)

const (
	maxNodes = 26 // aliases are single letters
	// segwitBlocks gets btcd's regtest past segwit activation (height 432)
	// with mature coinbases for every node.
	segwitBlocks = 500
	// announceDepth is the confirmation depth at which lnd announces a
	// channel.
	announceDepth      = 6
	pollInterval       = 250 * time.Millisecond
	keepMiningInterval = 5 * time.Second
)

// RegtestChainHash is the chain_hash of regtest gossip as it appears on the
// wire (the genesis block hash in internal byte order, displayed
// 0f9188f1…6e2206). It is assignable to lnd's chainhash.Hash. Do not modify.
var RegtestChainHash = [32]byte{
	0x06, 0x22, 0x6e, 0x46, 0x11, 0x1a, 0x0b, 0x59,
	0xca, 0xaf, 0x12, 0x60, 0x43, 0xeb, 0x5b, 0xbf,
	0x28, 0xc3, 0x4f, 0x3a, 0x5e, 0x33, 0x2a, 0x1f,
	0xc7, 0xb2, 0xb7, 0x3c, 0xf1, 0x88, 0x91, 0x0f,
}

// Options configures StartNetwork. The zero value asks for the defaults.
type Options struct {
	// Nodes is the number of lnd nodes, connected in a line with one public
	// channel between neighbours. Zero means DefaultNodes; at most 26.
	Nodes int
	// ChannelSat is the capacity of each channel in satoshis, funded by the
	// first node of the pair. Zero means DefaultChannelSat.
	ChannelSat int64
	// Timeout bounds the bring-up once the binaries exist (building them is
	// not counted). Zero means DefaultTimeout, shortened to the test's
	// deadline if that is sooner.
	Timeout time.Duration
}

// Network is a running regtest Lightning network: btcd and Nodes, with a
// public channel from Nodes[i] to Nodes[i+1] for every i. When StartNetwork
// returns, every node's graph holds every channel with both policies and every
// node announcement. The processes are stopped by the test's cleanup.
type Network struct {
	// Nodes are the lnd nodes, aliased "A", "B", … in order.
	Nodes []*Node
	// ChanPoints holds the funding outpoint of the channel Nodes[i] →
	// Nodes[i+1] at index i.
	ChanPoints []string

	btcd *btcd
}

// StartNetwork starts btcd and the lnd nodes described by opts, opens and
// announces the channels, and waits until the graph has propagated to every
// node. It fails the test (never skips it) if the binaries cannot be found or
// built or the network does not come up in time, printing the tail of the log
// of the process at fault. Every process is stopped by t.Cleanup.
//
// The first call on a machine builds lnd and btcd, which takes minutes; the
// bring-up itself takes well under a minute.
func StartNetwork(t testing.TB, opts Options) *Network {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = DefaultNodes
	}
	if opts.Nodes < 1 || opts.Nodes > maxNodes {
		t.Fatalf("downloadtest: Options.Nodes = %d, want 1..%d", opts.Nodes, maxNodes)
	}
	if opts.ChannelSat == 0 {
		opts.ChannelSat = DefaultChannelSat
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	binDir := findBinaries(t)

	started := time.Now()
	lap := phases{start: started}
	timeout := opts.Timeout
	if deadline, ok := testDeadline(t); ok {
		timeout = min(timeout, time.Until(deadline)-30*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	root := t.TempDir()
	home := filepath.Join(root, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatalf("downloadtest: %v", err)
	}
	ports := freePorts(t, 1+2*opts.Nodes)

	nw := &Network{btcd: newBtcd(filepath.Join(binDir, "btcd"), filepath.Join(root, "btcd"), home, ports[0])}
	bringUpDone := false
	t.Cleanup(func() {
		// Bring-up failures already printed the log at fault.
		if t.Failed() && bringUpDone {
			nw.logTails(t)
		}
	})
	removeHome := removeStrayHome()
	t.Cleanup(func() {
		if err := removeHome(); err != nil {
			t.Errorf("downloadtest: %v", err)
		}
	})
	t.Cleanup(func() {
		if err := nw.btcd.stop(); err != nil {
			t.Errorf("downloadtest: %v", err)
		}
	})

	// Stop the nodes before btcd, all at once: each takes a moment to flush.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nw.Nodes {
			wg.Go(func() {
				if err := n.proc.stop(); err != nil {
					t.Errorf("downloadtest: %v", err)
				}
			})
		}
		wg.Wait()
	})

	if err := os.MkdirAll(nw.btcd.dir, 0o700); err != nil {
		t.Fatalf("downloadtest: %v", err)
	}
	if err := nw.btcd.start(ctx, nil); err != nil {
		nw.fatalf(t, nw.btcd.proc, "start btcd: %v", err)
	}

	for i := range opts.Nodes {
		alias := string(rune('A' + i))
		dir := filepath.Join(root, "lnd-"+alias)
		n := &Node{
			Alias:   alias,
			Addr:    hostPort(ports[1+2*i]),
			RPCAddr: hostPort(ports[2+2*i]),
			Dir:     dir,
			LogPath: filepath.Join(dir, "lnd.out.log"),
			lncli:   filepath.Join(binDir, "lncli"),
			home:    home,
		}
		p, err := startProcess("lnd "+alias, filepath.Join(binDir, "lnd"), nw.lndArgs(n), home, n.LogPath)
		if err != nil {
			t.Fatalf("downloadtest: %v", err)
		}
		n.proc = p
		nw.Nodes = append(nw.Nodes, n)
	}
	lap.done("btcd and lnd started")

	// btcd mines only to addresses it was started with, and lnd needs btcd to
	// create its wallet. So: ask every wallet for an address, then restart
	// btcd, still at genesis, to mine to all of them. lnd reconnects to it.
	var miningAddrs []string
	for _, n := range nw.Nodes {
		var addr string
		// Creating a wallet is CPU-bound (scrypt); poll gently.
		err := nw.pollEvery(ctx, n, time.Second, func() (bool, error) {
			a, err := n.NewAddress(ctx)
			addr = a
			return err == nil, nil
		})
		if err != nil {
			nw.fatalf(t, n.proc, "wait for wallet of %s: %v", n.Alias, err)
		}
		miningAddrs = append(miningAddrs, addr)
	}
	lap.done("wallets ready")
	if err := nw.btcd.stop(); err != nil {
		t.Fatalf("downloadtest: restart btcd: %v", err)
	}
	if err := nw.btcd.start(ctx, miningAddrs); err != nil {
		nw.fatalf(t, nw.btcd.proc, "restart btcd with mining addresses: %v", err)
	}
	lap.done("btcd restarted")

	// Segwit activates on btcd's regtest at height 432; coinbases mature
	// after 100 blocks. btcd spreads the coinbases over the mining addresses,
	// so every node gets spendable coins.
	if _, err := nw.btcd.generate(ctx, segwitBlocks); err != nil {
		nw.fatalf(t, nw.btcd.proc, "mine %d blocks: %v", segwitBlocks, err)
	}
	lap.done(fmt.Sprintf("mined %d blocks", segwitBlocks))
	for _, n := range nw.Nodes {
		err := nw.pollMining(ctx, n, func() (bool, error) {
			info, err := n.GetInfo(ctx)
			if err != nil {
				return false, nil
			}
			if !info.SyncedToChain {
				return false, nil
			}
			// getinfo answers before lnd's server has started; most
			// other calls fail until it has.
			if state, err := n.state(ctx); err != nil || state != "SERVER_ACTIVE" {
				return false, nil
			}
			return true, n.setPubKey(info.PubKey)
		})
		if err != nil {
			nw.fatalf(t, n.proc, "wait for %s to sync to chain: %v", n.Alias, err)
		}
	}
	lap.done("nodes synced and active")

	for i := 0; i+1 < len(nw.Nodes); i++ {
		from, to := nw.Nodes[i], nw.Nodes[i+1]
		if err := from.Connect(ctx, to); err != nil {
			nw.fatalf(t, from.proc, "connect %s to %s: %v", from.Alias, to.Alias, err)
		}
		var chanPoint string
		var lastErr error
		// The wallet may still be catching up with its coinbases; retry.
		err := nw.poll(ctx, from, func() (bool, error) {
			chanPoint, lastErr = from.OpenChannel(ctx, to, opts.ChannelSat)
			return lastErr == nil, nil
		})
		if err != nil {
			nw.fatalf(t, from.proc, "open channel %s → %s: %v (last error: %v)", from.Alias, to.Alias, err, lastErr)
		}
		nw.ChanPoints = append(nw.ChanPoints, chanPoint)
	}
	if len(nw.ChanPoints) > 0 {
		err := nw.poll(ctx, nil, func() (bool, error) {
			txids, err := nw.btcd.mempool(ctx)
			return err == nil && len(txids) >= len(nw.ChanPoints), nil
		})
		if err != nil {
			nw.fatalf(t, nw.btcd.proc, "wait for funding transactions in btcd's mempool: %v", err)
		}
		if err := nw.Mine(ctx, announceDepth); err != nil {
			nw.fatalf(t, nw.btcd.proc, "confirm channels: %v", err)
		}
	}
	lap.done("channels opened and confirmed")

	for _, n := range nw.Nodes {
		var lastProblem string
		err := nw.pollMining(ctx, n, func() (bool, error) {
			g, err := n.DescribeGraph(ctx)
			if err != nil {
				lastProblem = err.Error()
				return false, nil
			}
			lastProblem = nw.graphProblem(g)
			return lastProblem == "", nil
		})
		if err != nil {
			nw.fatalf(t, n.proc, "wait for the full graph on %s: %v (%s)", n.Alias, err, lastProblem)
		}
	}
	lap.done("graph propagated")
	bringUpDone = true
	t.Logf("downloadtest: %d-node network up in %s (%s)", len(nw.Nodes), time.Since(started).Round(100*time.Millisecond), lap)
	return nw
}

// Node returns the node with the given alias, or nil.
func (nw *Network) Node(alias string) *Node {
	for _, n := range nw.Nodes {
		if n.Alias == alias {
			return n
		}
	}
	return nil
}

// Mine mines n blocks and waits until every node has processed them.
func (nw *Network) Mine(ctx context.Context, n int) error {
	if _, err := nw.btcd.generate(ctx, n); err != nil {
		return fmt.Errorf("mine: %w", err)
	}
	height, err := nw.btcd.blockCount(ctx)
	if err != nil {
		return fmt.Errorf("mine: %w", err)
	}
	for _, node := range nw.Nodes {
		err := nw.poll(ctx, node, func() (bool, error) {
			info, err := node.GetInfo(ctx)
			return err == nil && int64(info.BlockHeight) >= height, nil
		})
		if err != nil {
			return fmt.Errorf("mine: wait for %s to reach height %d: %w", node.Alias, height, err)
		}
	}
	return nil
}

// lndArgs returns the command line of node n.
func (nw *Network) lndArgs(n *Node) []string {
	return []string{
		"--lnddir=" + n.Dir,
		"--noseedbackup",
		"--norest",
		"--nobootstrap",
		"--alias=" + n.Alias,
		"--listen=" + n.Addr,
		"--externalip=" + n.Addr,
		"--rpclisten=" + n.RPCAddr,
		"--trickledelay=50",
		"--debuglevel=info",
		"--bitcoin.regtest",
		"--bitcoin.node=btcd",
		"--btcd.rpchost=" + nw.btcd.rpcAddr,
		"--btcd.rpcuser=" + btcdRPCUser,
		"--btcd.rpcpass=" + btcdRPCPass,
		"--btcd.rpccert=" + nw.btcd.certPath,
	}
}

// graphProblem returns what the graph still lacks, or "" once it has every
// channel with both policies and every node announcement with its alias and
// address.
func (nw *Network) graphProblem(g *Graph) string {
	for _, cp := range nw.ChanPoints {
		c := g.Channel(cp)
		switch {
		case c == nil:
			return "channel " + cp + " missing"
		case c.Node1Policy == nil || c.Node2Policy == nil:
			return "channel " + cp + " lacks a policy"
		}
	}
	if len(g.Channels) != len(nw.ChanPoints) {
		return fmt.Sprintf("%d channels, want %d", len(g.Channels), len(nw.ChanPoints))
	}
	if len(nw.ChanPoints) == 0 {
		return "" // A single node announces nothing.
	}
	for _, n := range nw.Nodes {
		gn := g.Node(n.PubKey)
		switch {
		case gn == nil:
			return "node " + n.Alias + " missing"
		case gn.Alias != n.Alias:
			return fmt.Sprintf("node %s has alias %q", n.Alias, gn.Alias)
		case !slices.Contains(gn.Addresses, n.Addr):
			return fmt.Sprintf("node %s has addresses %v, want %s", n.Alias, gn.Addresses, n.Addr)
		}
	}
	if len(g.Nodes) != len(nw.Nodes) {
		return fmt.Sprintf("%d nodes, want %d", len(g.Nodes), len(nw.Nodes))
	}
	return ""
}

// poll calls cond every pollInterval until it reports done, returns an error,
// ctx ends or the process of n (if not nil) exits.
func (nw *Network) poll(ctx context.Context, n *Node, cond func() (bool, error)) error {
	return nw.pollEvery(ctx, n, pollInterval, cond)
}

// pollEvery is poll with the given interval.
func (nw *Network) pollEvery(ctx context.Context, n *Node, interval time.Duration, cond func() (bool, error)) error {
	return poll(ctx, interval, func() (bool, error) {
		if n != nil {
			if exited, err := n.proc.exited(); exited {
				return false, fmt.Errorf("lnd %s: %w", n.Alias, err)
			}
		}
		return cond()
	})
}

// pollMining is poll that also mines a block every keepMiningInterval: lnd
// may wait for the next block to report synced_to_chain or to announce.
func (nw *Network) pollMining(ctx context.Context, n *Node, cond func() (bool, error)) error {
	last := time.Now()
	return nw.poll(ctx, n, func() (bool, error) {
		ok, err := cond()
		if ok || err != nil {
			return ok, err
		}
		if time.Since(last) >= keepMiningInterval {
			last = time.Now()
			if _, err := nw.btcd.generate(ctx, 1); err != nil {
				return false, err
			}
		}
		return false, nil
	})
}

// fatalf fails the test with the tail of p's log.
func (nw *Network) fatalf(t testing.TB, p *process, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("downloadtest: "+format, args...)
	if p != nil {
		msg += fmt.Sprintf("\n--- last %d lines of %s (%s) ---\n%s", tailLines, p.name, p.logPath, p.logTail())
	}
	t.Fatal(msg)
}

// logTails logs the end of every process log, for failures after bring-up.
func (nw *Network) logTails(t testing.TB) {
	var b strings.Builder
	procs := []*process{nw.btcd.proc}
	for _, n := range nw.Nodes {
		procs = append(procs, n.proc)
	}
	for _, p := range procs {
		if p != nil {
			fmt.Fprintf(&b, "\n--- last %d lines of %s (%s) ---\n%s\n", tailLines, p.name, p.logPath, p.logTail())
		}
	}
	t.Log("downloadtest: test failed; process logs:" + b.String())
}

// poll calls cond every interval until it reports done or fails, or ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up: %w", context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// phases records how long each step of the bring-up took.
type phases struct {
	start time.Time
	steps []string
}

func (p *phases) done(step string) {
	now := time.Now()
	p.steps = append(p.steps, step+" "+strconv.FormatFloat(now.Sub(p.start).Seconds(), 'f', 1, 64)+"s")
	p.start = now
}

func (p phases) String() string { return strings.Join(p.steps, ", ") }
