package gen

import (
	"encoding/hex"
	"testing"
)

func TestReadTopology(t *testing.T) {
	tests := []struct {
		name            string
		channels, nodes int
		btc             float64 // total capacity, BTC
		node0           string
		alias0          string
	}{
		{"2024", 59428, 18212, 5368.9, "03864ef025fde8fb587d989186ce6a4a186895ee44a926bfc370e2c366597a3f8f", "ACINQ"},
		{"2026", 50808, 17324, 5361.7, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := LoadTopology(t.Context(), datasets, tt.name, tt.node0 != "")
			if err != nil {
				t.Fatal(err)
			}
			if len(topo.Channels) != tt.channels || len(topo.Nodes) != tt.nodes {
				t.Errorf("%d channels, %d nodes; want %d, %d", len(topo.Channels), len(topo.Nodes), tt.channels, tt.nodes)
			}
			var sat uint64
			disabled := 0
			for _, ch := range topo.Channels {
				sat += ch.CapacitySat
				for _, p := range ch.Policies {
					if p.Disabled {
						disabled++
					}
					if p.HTLCMaxMsat > ch.CapacitySat*1000 || p.HTLCMinMsat > p.HTLCMaxMsat || p.HTLCMaxMsat == 0 {
						t.Fatalf("policy %+v of a %d sat channel", p, ch.CapacitySat)
					}
				}
			}
			if tt.btc != 0 {
				if got := float64(sat) / 1e8; got < tt.btc-0.1 || got > tt.btc+0.1 {
					t.Errorf("total capacity %.1f BTC, want %.1f", got, tt.btc)
				}
			}
			if disabled == 0 || disabled > len(topo.Channels) {
				t.Errorf("%d disabled directions", disabled)
			}
			t.Logf("%d channels, %d nodes, %.1f BTC, %d disabled directions, %d clamped htlc_max",
				len(topo.Channels), len(topo.Nodes), float64(sat)/1e8, disabled, topo.ClampedHTLCMax)
			if tt.name == "2026" {
				// Channel 12345 as an independent decoder of the
				// file reads it; direction 1 stores htlc_max as 0
				// ("equal to capacity").
				want := TopoChannel{Nodes: [2]int{11, 910}, CapacitySat: 50_000_000, Policies: [2]Policy{
					{HTLCMinMsat: 1, HTLCMaxMsat: 45_000_000_000, FeePPM: 999, CLTVDelta: 144},
					{HTLCMinMsat: 1000, HTLCMaxMsat: 50_000_000_000, FeePPM: 10000, CLTVDelta: 80},
				}}
				if got := topo.Channels[12345]; got != want {
					t.Errorf("channel 12345 = %+v, want %+v", got, want)
				}
				// Channel 58 direction 0 stores htlc_max as 1 ("99%
				// of capacity"); channel 136 direction 0 is disabled
				// (all values 0) and gets the default policy.
				if got := topo.Channels[58].Policies[0]; got.HTLCMaxMsat != 900_000*990 || got.FeeBaseMsat != 1000 || got.FeePPM != 499 {
					t.Errorf("channel 58 dir 0 = %+v, want htlc_max 99%% of 900,000 sat", got)
				}
				want136 := Policy{Disabled: true, HTLCMinMsat: 1000, HTLCMaxMsat: 1_000_000 * 990, FeeBaseMsat: 1000, FeePPM: 1, CLTVDelta: 80}
				if got := topo.Channels[136].Policies; got[0] != want136 || got[1].Disabled || got[1].FeePPM != 300 {
					t.Errorf("channel 136 = %+v, want direction 0 disabled with defaults", got)
				}
			}
			if tt.node0 != "" {
				if got := hex.EncodeToString(topo.Nodes[0].ID[:]); got != tt.node0 || topo.Nodes[0].Alias != tt.alias0 {
					t.Errorf("node 0 is %s %q, want %s %q", got, topo.Nodes[0].Alias, tt.node0, tt.alias0)
				}
			}
		})
	}
}

func TestSample(t *testing.T) {
	topo, _, _, err := loadTopo()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{50, 300, 3000} {
		s := topo.Sample(n, 1)
		if len(s.Channels) != n {
			t.Fatalf("sample of %d has %d channels", n, len(s.Channels))
		}
		// Connected: union-find over the sampled channels.
		parent := make([]int, len(s.Nodes))
		for i := range parent {
			parent[i] = i
		}
		find := func(x int) int {
			for parent[x] != x {
				parent[x] = parent[parent[x]]
				x = parent[x]
			}
			return x
		}
		deg := make([]int, len(s.Nodes))
		for _, ch := range s.Channels {
			parent[find(ch.Nodes[0])] = find(ch.Nodes[1])
			deg[ch.Nodes[0]]++
			deg[ch.Nodes[1]]++
		}
		roots := map[int]bool{}
		for i := range s.Nodes {
			roots[find(i)] = true
			if deg[i] == 0 {
				t.Fatalf("sample of %d: node %d has no channel", n, i)
			}
		}
		if len(roots) != 1 {
			t.Errorf("sample of %d has %d components", n, len(roots))
		}
		again := topo.Sample(n, 1)
		other := topo.Sample(n, 2)
		same, differ := true, false
		for i := range s.Channels {
			same = same && s.Channels[i] == again.Channels[i]
			differ = differ || s.Channels[i] != other.Channels[i]
		}
		if !same || !differ {
			t.Errorf("sample of %d: same seed same sample %v, other seed differs %v", n, same, differ)
		}
	}
}
