package downloadtest

import (
	"encoding/json"
	"testing"
)

// TestGraphDecoding checks that describegraph output decodes the same whether
// lncli prints integers as strings or as numbers, and that a missing policy
// stays nil.
func TestGraphDecoding(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"strings", `{"nodes":[{"last_update":"1700000000","pub_key":"02aa","alias":"A",
			"addresses":[{"network":"tcp","addr":"127.0.0.1:9735"}],
			"features":{"7":{"name":"gossip-queries","is_required":false,"is_known":true},
			            "0":{"name":"data-loss-protect","is_required":true,"is_known":true}}}],
			"edges":[{"channel_id":"18446744073709551615","chan_point":"ab:1","node1_pub":"02aa","node2_pub":"03bb",
			"capacity":"1000000","node1_policy":{"time_lock_delta":"80","min_htlc":"1000",
			"fee_base_msat":"2345","fee_rate_milli_msat":"678","disabled":true,
			"max_htlc_msat":"990000000","last_update":"1700000001"},"node2_policy":null}]}`},
		{"numbers", `{"nodes":[{"last_update":1700000000,"pub_key":"02aa","alias":"A",
			"addresses":[{"network":"tcp","addr":"127.0.0.1:9735"}],
			"features":{"0":{"name":"data-loss-protect","is_required":true,"is_known":true},
			            "7":{"name":"gossip-queries","is_required":false,"is_known":true}}}],
			"edges":[{"channel_id":18446744073709551615,"chan_point":"ab:1","node1_pub":"02aa","node2_pub":"03bb",
			"capacity":1000000,"node1_policy":{"time_lock_delta":80,"min_htlc":1000,
			"fee_base_msat":2345,"fee_rate_milli_msat":678,"disabled":true,
			"max_htlc_msat":990000000,"last_update":1700000001}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw rawGraph
			if err := json.Unmarshal([]byte(tt.json), &raw); err != nil {
				t.Fatal(err)
			}
			g := raw.graph()
			n := g.Node("02aa")
			if n == nil || n.Alias != "A" || n.LastUpdate != 1700000000 || len(n.Addresses) != 1 || n.Addresses[0] != "127.0.0.1:9735" {
				t.Fatalf("node = %+v", n)
			}
			if len(n.Features) != 2 || n.Features[0].Bit != 0 || !n.Features[0].IsRequired || n.Features[1].Bit != 7 {
				t.Errorf("features = %+v", n.Features)
			}
			c := g.Channel("ab:1")
			if c == nil || c.ChannelID != 1<<64-1 || c.Capacity != 1000000 || c.Node2Policy != nil {
				t.Fatalf("channel = %+v", c)
			}
			want := Policy{Disabled: true, TimeLockDelta: 80, MinHTLCMsat: 1000, MaxHTLCMsat: 990000000,
				FeeBaseMsat: 2345, FeeRateMilliMsat: 678, LastUpdate: 1700000001}
			if p := c.Policy("02aa"); p == nil || *p != want {
				t.Errorf("node1 policy = %+v, want %+v", p, want)
			}
		})
	}
}
