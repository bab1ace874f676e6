package downloadtest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Graph is a node's view of the channel graph, from lncli describegraph.
type Graph struct {
	Nodes    []GraphNode
	Channels []Channel
}

// GraphNode is a node announcement as lnd stores it. A node known only from
// channel announcements has no alias, no addresses and a zero LastUpdate.
type GraphNode struct {
	// PubKey is the node's identity key, hex encoded.
	PubKey string
	Alias  string
	// Addresses are the announced addresses as host:port.
	Addresses []string
	// Features are the announced feature bits, in ascending bit order.
	Features []Feature
	// LastUpdate is the node_announcement timestamp, Unix seconds.
	LastUpdate uint32
}

// Feature is one feature bit of a node announcement.
type Feature struct {
	Bit        uint32
	Name       string
	IsRequired bool
	IsKnown    bool
}

// Channel is a channel announcement with the latest channel update of each
// direction, nil until the node has received one.
type Channel struct {
	// ChannelID is the short channel ID (block height << 40 | tx index << 16 |
	// output index).
	ChannelID uint64
	// ChanPoint is the funding outpoint, "txid:index".
	ChanPoint string
	// Node1 and Node2 are the endpoints' identity keys, hex encoded, in the
	// BOLT 7 order (Node1 has the lesser key).
	Node1, Node2 string
	// Capacity is the channel capacity in satoshis.
	Capacity int64
	// Node1Policy and Node2Policy are the latest channel_update signed by
	// Node1 and Node2 respectively.
	Node1Policy, Node2Policy *Policy
}

// Policy is the routing policy of one direction of a channel, as carried by a
// channel_update.
type Policy struct {
	Disabled         bool
	TimeLockDelta    uint32
	MinHTLCMsat      int64
	MaxHTLCMsat      uint64
	FeeBaseMsat      int64
	FeeRateMilliMsat int64
	// LastUpdate is the channel_update timestamp, Unix seconds.
	LastUpdate uint32
}

// Node returns the graph node with the hex identity key pubKey, or nil.
func (g *Graph) Node(pubKey string) *GraphNode {
	for i := range g.Nodes {
		if g.Nodes[i].PubKey == pubKey {
			return &g.Nodes[i]
		}
	}
	return nil
}

// Channel returns the channel funded at chanPoint, or nil.
func (g *Graph) Channel(chanPoint string) *Channel {
	for i := range g.Channels {
		if g.Channels[i].ChanPoint == chanPoint {
			return &g.Channels[i]
		}
	}
	return nil
}

// Policy returns the policy signed by the node with hex identity key pubKey,
// or nil if the node is not an endpoint or its update has not arrived.
func (c *Channel) Policy(pubKey string) *Policy {
	switch pubKey {
	case c.Node1:
		return c.Node1Policy
	case c.Node2:
		return c.Node2Policy
	}
	return nil
}

// rawGraph is describegraph's JSON. lncli prints 64-bit integers as strings
// and narrower ones as numbers; jsonInt64 and jsonUint64 accept both, so the
// harness does not depend on which.
type rawGraph struct {
	Nodes []struct {
		LastUpdate jsonInt64 `json:"last_update"`
		PubKey     string    `json:"pub_key"`
		Alias      string    `json:"alias"`
		Addresses  []struct {
			Network string `json:"network"`
			Addr    string `json:"addr"`
		} `json:"addresses"`
		Features map[string]struct {
			Name       string `json:"name"`
			IsRequired bool   `json:"is_required"`
			IsKnown    bool   `json:"is_known"`
		} `json:"features"`
	} `json:"nodes"`
	Edges []struct {
		ChannelID   jsonUint64 `json:"channel_id"`
		ChanPoint   string     `json:"chan_point"`
		Node1Pub    string     `json:"node1_pub"`
		Node2Pub    string     `json:"node2_pub"`
		Capacity    jsonInt64  `json:"capacity"`
		Node1Policy *rawPolicy `json:"node1_policy"`
		Node2Policy *rawPolicy `json:"node2_policy"`
	} `json:"edges"`
}

type rawPolicy struct {
	TimeLockDelta    jsonInt64  `json:"time_lock_delta"`
	MinHTLC          jsonInt64  `json:"min_htlc"`
	FeeBaseMsat      jsonInt64  `json:"fee_base_msat"`
	FeeRateMilliMsat jsonInt64  `json:"fee_rate_milli_msat"`
	Disabled         bool       `json:"disabled"`
	MaxHTLCMsat      jsonUint64 `json:"max_htlc_msat"`
	LastUpdate       jsonInt64  `json:"last_update"`
}

func (r *rawGraph) graph() *Graph {
	g := &Graph{
		Nodes:    make([]GraphNode, 0, len(r.Nodes)),
		Channels: make([]Channel, 0, len(r.Edges)),
	}
	for _, rn := range r.Nodes {
		n := GraphNode{
			PubKey:     rn.PubKey,
			Alias:      rn.Alias,
			LastUpdate: uint32(rn.LastUpdate),
		}
		for _, a := range rn.Addresses {
			n.Addresses = append(n.Addresses, a.Addr)
		}
		for bit, f := range rn.Features {
			b, err := strconv.ParseUint(bit, 10, 32)
			if err != nil {
				continue
			}
			n.Features = append(n.Features, Feature{Bit: uint32(b), Name: f.Name, IsRequired: f.IsRequired, IsKnown: f.IsKnown})
		}
		slices.SortFunc(n.Features, func(a, b Feature) int { return int(a.Bit) - int(b.Bit) })
		g.Nodes = append(g.Nodes, n)
	}
	for _, re := range r.Edges {
		g.Channels = append(g.Channels, Channel{
			ChannelID:   uint64(re.ChannelID),
			ChanPoint:   re.ChanPoint,
			Node1:       re.Node1Pub,
			Node2:       re.Node2Pub,
			Capacity:    int64(re.Capacity),
			Node1Policy: re.Node1Policy.policy(),
			Node2Policy: re.Node2Policy.policy(),
		})
	}
	return g
}

func (r *rawPolicy) policy() *Policy {
	if r == nil {
		return nil
	}
	return &Policy{
		Disabled:         r.Disabled,
		TimeLockDelta:    uint32(r.TimeLockDelta),
		MinHTLCMsat:      int64(r.MinHTLC),
		MaxHTLCMsat:      uint64(r.MaxHTLCMsat),
		FeeBaseMsat:      int64(r.FeeBaseMsat),
		FeeRateMilliMsat: int64(r.FeeRateMilliMsat),
		LastUpdate:       uint32(r.LastUpdate),
	}
}

// jsonInt64 decodes a JSON integer written either as a number or as a string.
type jsonInt64 int64

func (n *jsonInt64) UnmarshalJSON(b []byte) error {
	s, ok := jsonNumberText(b)
	if !ok {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("integer %s: %w", b, err)
	}
	*n = jsonInt64(v)
	return nil
}

// jsonUint64 decodes an unsigned JSON integer written either as a number or
// as a string.
type jsonUint64 uint64

func (n *jsonUint64) UnmarshalJSON(b []byte) error {
	s, ok := jsonNumberText(b)
	if !ok {
		*n = 0
		return nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("unsigned integer %s: %w", b, err)
	}
	*n = jsonUint64(v)
	return nil
}

// jsonNumberText strips the quotes of a string-encoded number; ok is false for
// null and the empty string, which decode as zero.
func jsonNumberText(b []byte) (string, bool) {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return "", false
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s, s != ""
}
