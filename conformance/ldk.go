package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/lnsync/lnsync/rgs"
)

// Network names an LDK network for a fresh graph.
type Network string

// Networks LDK 0.1 knows.
const (
	Mainnet Network = "mainnet"
	Testnet Network = "testnet"
	Signet  Network = "signet"
	Regtest Network = "regtest"
)

// NetworkFor returns the LDK network whose genesis hash is chain.
func NetworkFor(chain [32]byte) (Network, error) {
	switch chain {
	case rgs.ChainMainnet:
		return Mainnet, nil
	case rgs.ChainTestnet3:
		return Testnet, nil
	case rgs.ChainSignet:
		return Signet, nil
	case rgs.ChainRegtest:
		return Regtest, nil
	}
	return "", fmt.Errorf("chain %x: no LDK 0.1 network", chain[:])
}

// Run is one independent application: files applied in order to a fresh graph.
type Run struct {
	Network Network
	// Now is the current unix time passed to the client; 0 passes none, which
	// disables the staleness check and pruning (as upstream tests do).
	Now uint64
	// Nows, when set, gives each file its own current time (a client applying
	// files as they arrive); it must have one entry per file.
	Nows []uint64
	// PruneAt, when set, has the client prune stale channels at this time
	// after applying the files, as an LDK node's background processor does
	// hourly between two syncs.
	PruneAt uint64
	Files   [][]byte
}

// Result is the client's answer for one file.
type Result struct {
	OK bool `json:"ok"`
	// Timestamp is the returned latest_seen when OK.
	Timestamp uint32 `json:"timestamp"`
	// Error is "DecodeError::<Kind>" or "LightningError: <message>".
	Error string `json:"error,omitempty"`
}

// Graph is a network graph as the client holds it.
type Graph struct {
	Results []Result `json:"results"`
	// LastRGSTimestamp is the graph's stored last sync timestamp (nil if no
	// file stored one).
	LastRGSTimestamp *uint32   `json:"last_rgs_timestamp"`
	Channels         []Channel `json:"channels"`
	Nodes            []Node    `json:"nodes"`
	// Logs holds the client's log records, every level, the first 5000.
	Logs []LogLine `json:"logs"`
}

// Channel is one channel in the graph.
type Channel struct {
	SCID     uint64       `json:"scid"`
	NodeOne  rgs.NodeID   `json:"node_one"`
	NodeTwo  rgs.NodeID   `json:"node_two"`
	Features rgs.Features `json:"features"`
	// CapacitySats is nil when unknown (always, for LDK 0.1 over RGS).
	CapacitySats *uint64 `json:"capacity_sats"`
	// OneToTwo is the direction updated by NodeOne (direction 0).
	OneToTwo *Direction `json:"one_to_two"`
	TwoToOne *Direction `json:"two_to_one"`
}

// Direction is one channel direction's routing data.
type Direction struct {
	Enabled                   bool   `json:"enabled"`
	CLTVExpiryDelta           uint16 `json:"cltv_expiry_delta"`
	HTLCMinimumMsat           uint64 `json:"htlc_minimum_msat"`
	HTLCMaximumMsat           uint64 `json:"htlc_maximum_msat"`
	FeeBaseMsat               uint32 `json:"fee_base_msat"`
	FeeProportionalMillionths uint32 `json:"fee_proportional_millionths"`
	LastUpdate                uint32 `json:"last_update"`
}

// Node is one node in the graph.
type Node struct {
	NodeID       rgs.NodeID        `json:"node_id"`
	Channels     []uint64          `json:"channels"`
	Announcement *NodeAnnouncement `json:"announcement"`
}

// NodeAnnouncement is the node data the client holds.
type NodeAnnouncement struct {
	Features   rgs.Features  `json:"features"`
	LastUpdate uint32        `json:"last_update"`
	Addresses  []rgs.Address `json:"addresses"`
}

// LogLine is one client log record.
type LogLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
}

// wire types: what apply.mjs prints (u64 values as decimal strings).
type wireOutput struct {
	LDKVersion string      `json:"ldk_version"`
	Graphs     []wireGraph `json:"graphs"`
}

type wireGraph struct {
	Results          []Result      `json:"results"`
	LastRGSTimestamp *uint32       `json:"last_rgs_timestamp"`
	Channels         []wireChannel `json:"channels"`
	Nodes            []wireNode    `json:"nodes"`
	Logs             []LogLine     `json:"logs"`
}

type wireChannel struct {
	SCID         uint64         `json:"scid,string"`
	NodeOne      rgs.NodeID     `json:"node_one"`
	NodeTwo      rgs.NodeID     `json:"node_two"`
	Features     rgs.Features   `json:"features"`
	CapacitySats *string        `json:"capacity_sats"`
	OneToTwo     *wireDirection `json:"one_to_two"`
	TwoToOne     *wireDirection `json:"two_to_one"`
}

type wireDirection struct {
	Enabled                   bool   `json:"enabled"`
	CLTVExpiryDelta           uint16 `json:"cltv_expiry_delta"`
	HTLCMinimumMsat           uint64 `json:"htlc_minimum_msat,string"`
	HTLCMaximumMsat           uint64 `json:"htlc_maximum_msat,string"`
	FeeBaseMsat               uint32 `json:"fee_base_msat"`
	FeeProportionalMillionths uint32 `json:"fee_proportional_millionths"`
	LastUpdate                uint32 `json:"last_update"`
}

type wireNode struct {
	NodeID       rgs.NodeID `json:"node_id"`
	Channels     []string   `json:"channels"`
	Announcement *struct {
		Features   rgs.Features `json:"features"`
		LastUpdate uint32       `json:"last_update"`
		Addresses  []struct {
			Descriptor string `json:"descriptor"`
		} `json:"addresses"`
	} `json:"announcement"`
}

// ErrNoHarness reports that Node.js or the harness dependencies are missing.
var ErrNoHarness = errors.New("ldk harness not installed")

// HarnessDir returns the directory of apply.mjs: conformance/ldk under the module
// root found by walking up from the working directory to go.mod.
func HarnessDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "conformance", "ldk"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory: %w", ErrNoHarness)
		}
		dir = parent
	}
}

// ApplyLDK applies files in order to a fresh graph for network with LDK's client
// and returns the resulting graph. now is the client's current unix time, 0 for
// none.
func ApplyLDK(ctx context.Context, network Network, files [][]byte, now uint64) (*Graph, error) {
	gs, err := ApplyLDKRuns(ctx, []Run{{Network: network, Now: now, Files: files}})
	if err != nil {
		return nil, err
	}
	return gs[0], nil
}

// ApplyLDKRuns performs several independent runs in one Node.js process (loading
// the WebAssembly module once).
func ApplyLDKRuns(ctx context.Context, runs []Run) ([]*Graph, error) {
	dir, err := HarnessDir()
	if err != nil {
		return nil, err
	}
	wasm := filepath.Join(dir, "node_modules", "lightningdevkit", "liblightningjs.wasm")
	if _, err := os.Stat(wasm); err != nil {
		return nil, fmt.Errorf("%s missing: run `npm ci --prefix conformance/ldk`: %w", wasm, ErrNoHarness)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node.js not found (%v): %w", err, ErrNoHarness)
	}

	type wireRun struct {
		Network string   `json:"network"`
		Now     string   `json:"now"`
		Nows    []string `json:"nows,omitempty"`
		PruneAt string   `json:"prune_at,omitempty"`
		Files   []string `json:"files"`
	}
	in := struct {
		Runs []wireRun `json:"runs"`
	}{}
	for _, r := range runs {
		if len(r.Nows) > 0 && len(r.Nows) != len(r.Files) {
			return nil, fmt.Errorf("run has %d current times for %d files", len(r.Nows), len(r.Files))
		}
		wr := wireRun{Network: string(r.Network), Now: strconv.FormatUint(r.Now, 10), Files: []string{}}
		for _, n := range r.Nows {
			wr.Nows = append(wr.Nows, strconv.FormatUint(n, 10))
		}
		if r.PruneAt != 0 {
			wr.PruneAt = strconv.FormatUint(r.PruneAt, 10)
		}
		for _, f := range r.Files {
			wr.Files = append(wr.Files, base64.StdEncoding.EncodeToString(f))
		}
		in.Runs = append(in.Runs, wr)
	}
	input, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(dir, "apply.mjs"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run apply.mjs: %w\n%s", err, stderr.Bytes())
	}
	var out wireOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("parse apply.mjs output: %w", err)
	}
	if len(out.Graphs) != len(runs) {
		return nil, fmt.Errorf("apply.mjs returned %d graphs for %d runs", len(out.Graphs), len(runs))
	}
	graphs := make([]*Graph, len(out.Graphs))
	for i := range out.Graphs {
		g, err := out.Graphs[i].graph()
		if err != nil {
			return nil, err
		}
		graphs[i] = g
	}
	return graphs, nil
}

func (w *wireGraph) graph() (*Graph, error) {
	g := &Graph{Results: w.Results, LastRGSTimestamp: w.LastRGSTimestamp, Logs: w.Logs,
		Channels: []Channel{}, Nodes: []Node{}}
	for _, c := range w.Channels {
		ch := Channel{SCID: c.SCID, NodeOne: c.NodeOne, NodeTwo: c.NodeTwo, Features: c.Features,
			OneToTwo: c.OneToTwo.direction(), TwoToOne: c.TwoToOne.direction()}
		if c.CapacitySats != nil {
			v, err := strconv.ParseUint(*c.CapacitySats, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("capacity of %d: %w", c.SCID, err)
			}
			ch.CapacitySats = &v
		}
		g.Channels = append(g.Channels, ch)
	}
	for _, n := range w.Nodes {
		node := Node{NodeID: n.NodeID, Channels: []uint64{}}
		for _, s := range n.Channels {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("channel of node %v: %w", n.NodeID, err)
			}
			node.Channels = append(node.Channels, v)
		}
		if a := n.Announcement; a != nil {
			na := &NodeAnnouncement{Features: a.Features, LastUpdate: a.LastUpdate, Addresses: []rgs.Address{}}
			for _, addr := range a.Addresses {
				var d rgs.Features
				if err := d.UnmarshalText([]byte(addr.Descriptor)); err != nil {
					return nil, fmt.Errorf("address of node %v: %w", n.NodeID, err)
				}
				na.Addresses = append(na.Addresses, rgs.Address(d))
			}
			node.Announcement = na
		}
		g.Nodes = append(g.Nodes, node)
	}
	return g, nil
}

func (w *wireDirection) direction() *Direction {
	if w == nil {
		return nil
	}
	d := Direction(*w)
	return &d
}
