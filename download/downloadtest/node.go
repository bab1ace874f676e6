package downloadtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Node is one lnd node of a Network. Its fields are set once the node is up
// and never change; its methods run lncli against the node and are safe for
// concurrent use.
type Node struct {
	// Alias is the alias the node announces (lnd --alias): "A", "B", "C", …
	Alias string
	// PubKey is the node's identity key, 33-byte compressed, hex encoded.
	PubKey string
	// PubKeyBytes is PubKey decoded.
	PubKeyBytes [33]byte
	// Addr is the node's P2P address, 127.0.0.1:port, which it also
	// announces; a gossip client dials it with PubKey.
	Addr string
	// RPCAddr is the node's gRPC address, 127.0.0.1:port.
	RPCAddr string
	// Dir is the node's lnddir under the test's temporary directory.
	Dir string
	// LogPath is the file receiving the node's stdout and stderr.
	LogPath string

	lncli string
	home  string
	proc  *process
}

// CLI runs lncli with args against the node and, when out is not nil, decodes
// its JSON output into out. It is the escape hatch for commands the Node
// methods do not cover. The error carries lncli's stderr.
func (n *Node) CLI(ctx context.Context, out any, args ...string) error {
	full := append([]string{
		"--lnddir=" + n.Dir,
		"--rpcserver=" + n.RPCAddr,
		"--network=regtest",
	}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, n.lncli, full...)
	cmd.Env = childEnv(n.home)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	name := "lncli"
	if len(args) > 0 {
		name += " " + args[0]
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return fmt.Errorf("%s on %s: %w: %s", name, n.Alias, err, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("%s on %s: decode output: %w", name, n.Alias, err)
	}
	return nil
}

// Info is the part of lncli getinfo the harness and its tests use.
type Info struct {
	PubKey            string
	Alias             string
	BlockHeight       uint32
	SyncedToChain     bool
	SyncedToGraph     bool
	NumPeers          uint32
	NumActiveChannels uint32
}

// GetInfo returns the node's lncli getinfo.
func (n *Node) GetInfo(ctx context.Context) (*Info, error) {
	var raw struct {
		IdentityPubkey    string    `json:"identity_pubkey"`
		Alias             string    `json:"alias"`
		BlockHeight       jsonInt64 `json:"block_height"`
		SyncedToChain     bool      `json:"synced_to_chain"`
		SyncedToGraph     bool      `json:"synced_to_graph"`
		NumPeers          jsonInt64 `json:"num_peers"`
		NumActiveChannels jsonInt64 `json:"num_active_channels"`
	}
	if err := n.CLI(ctx, &raw, "getinfo"); err != nil {
		return nil, err
	}
	return &Info{
		PubKey:            raw.IdentityPubkey,
		Alias:             raw.Alias,
		BlockHeight:       uint32(raw.BlockHeight),
		SyncedToChain:     raw.SyncedToChain,
		SyncedToGraph:     raw.SyncedToGraph,
		NumPeers:          uint32(raw.NumPeers),
		NumActiveChannels: uint32(raw.NumActiveChannels),
	}, nil
}

// state returns lnd's start-up state, SERVER_ACTIVE once fully started.
func (n *Node) state(ctx context.Context) (string, error) {
	var raw struct {
		State string `json:"state"`
	}
	if err := n.CLI(ctx, &raw, "state"); err != nil {
		return "", err
	}
	return raw.State, nil
}

// NewAddress returns a new P2WKH address of the node's wallet.
func (n *Node) NewAddress(ctx context.Context) (string, error) {
	var raw struct {
		Address string `json:"address"`
	}
	if err := n.CLI(ctx, &raw, "newaddress", "p2wkh"); err != nil {
		return "", err
	}
	if raw.Address == "" {
		return "", fmt.Errorf("lncli newaddress on %s: empty address", n.Alias)
	}
	return raw.Address, nil
}

// Connect connects the node to peer over P2P. Connecting to a peer that is
// already connected succeeds.
func (n *Node) Connect(ctx context.Context, peer *Node) error {
	err := n.CLI(ctx, nil, "connect", peer.PubKey+"@"+peer.Addr)
	if err != nil && strings.Contains(err.Error(), "already connected") {
		return nil
	}
	return err
}

// OpenChannel opens a public channel of amountSat funded by the node to peer,
// which must be connected, and returns its channel point ("txid:index") once
// the funding transaction is broadcast. The caller mines the blocks that
// confirm it.
func (n *Node) OpenChannel(ctx context.Context, peer *Node, amountSat int64) (string, error) {
	var opened struct {
		FundingTxid string `json:"funding_txid"`
	}
	err := n.CLI(ctx, &opened, "openchannel",
		"--node_key="+peer.PubKey,
		"--local_amt="+strconv.FormatInt(amountSat, 10))
	if err != nil {
		return "", err
	}
	if opened.FundingTxid == "" {
		return "", fmt.Errorf("lncli openchannel on %s: no funding_txid", n.Alias)
	}
	var pending struct {
		PendingOpenChannels []struct {
			Channel struct {
				ChannelPoint string `json:"channel_point"`
			} `json:"channel"`
		} `json:"pending_open_channels"`
	}
	if err := n.CLI(ctx, &pending, "pendingchannels"); err != nil {
		return "", err
	}
	for _, c := range pending.PendingOpenChannels {
		if strings.HasPrefix(c.Channel.ChannelPoint, opened.FundingTxid+":") {
			return c.Channel.ChannelPoint, nil
		}
	}
	return "", fmt.Errorf("open channel on %s: funding tx %s not in pendingchannels", n.Alias, opened.FundingTxid)
}

// CloseChannel starts a cooperative close (or a unilateral one if force) of
// the channel at chanPoint and returns once the closing transaction is
// broadcast. The caller mines the blocks that confirm it.
func (n *Node) CloseChannel(ctx context.Context, chanPoint string, force bool) error {
	txid, index, ok := strings.Cut(chanPoint, ":")
	if !ok {
		return fmt.Errorf("close channel: bad channel point %q", chanPoint)
	}
	args := []string{"closechannel", "--funding_txid=" + txid, "--output_index=" + index}
	if force {
		args = append(args, "--force")
	}
	return n.CLI(ctx, nil, args...)
}

// UpdateChanPolicy sets the node's forwarding policy for the channel at
// chanPoint, which makes the node sign and broadcast a new channel_update.
func (n *Node) UpdateChanPolicy(ctx context.Context, chanPoint string, baseFeeMsat, feeRatePPM int64, timeLockDelta uint32) error {
	var raw struct {
		FailedUpdates []json.RawMessage `json:"failed_updates"`
	}
	err := n.CLI(ctx, &raw, "updatechanpolicy",
		"--base_fee_msat="+strconv.FormatInt(baseFeeMsat, 10),
		"--fee_rate_ppm="+strconv.FormatInt(feeRatePPM, 10),
		"--time_lock_delta="+strconv.FormatUint(uint64(timeLockDelta), 10),
		"--chan_point="+chanPoint)
	if err != nil {
		return err
	}
	if len(raw.FailedUpdates) > 0 {
		return fmt.Errorf("lncli updatechanpolicy on %s: failed updates: %s", n.Alias, raw.FailedUpdates)
	}
	return nil
}

// DescribeGraph returns the channel graph as the node knows it.
func (n *Node) DescribeGraph(ctx context.Context) (*Graph, error) {
	var raw rawGraph
	if err := n.CLI(ctx, &raw, "describegraph"); err != nil {
		return nil, err
	}
	return raw.graph(), nil
}

// setPubKey sets PubKey and PubKeyBytes from a hex identity key.
func (n *Node) setPubKey(pub string) error {
	b, err := hex.DecodeString(pub)
	if err != nil {
		return fmt.Errorf("identity key %q: %w", pub, err)
	}
	if len(b) != 33 || (b[0] != 2 && b[0] != 3) {
		return fmt.Errorf("identity key %q: not a 33-byte compressed key", pub)
	}
	n.PubKey = pub
	copy(n.PubKeyBytes[:], b)
	return nil
}
