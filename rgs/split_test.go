package rgs

import (
	"bytes"
	"slices"
	"testing"
)

func TestSplitAddresses(t *testing.T) {
	ipv4 := []byte{AddrIPv4, 1, 2, 3, 4, 0x26, 0x07}
	ipv6 := append([]byte{AddrIPv6}, bytes.Repeat([]byte{0xfe}, 18)...)
	torv3 := append([]byte{AddrTorV3}, bytes.Repeat([]byte{7}, 37)...)
	dns := []byte{AddrHostname, 3, 'a', '.', 'b', 0x26, 0x07}
	badDNS := []byte{AddrHostname, 2, ' ', '!', 0, 1} // unusable, but its length is known
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		in   []byte
		want [][]byte
	}{
		{"empty", nil, nil},
		{"every type in order", cat(ipv4, ipv6, torv3, dns), [][]byte{ipv4, ipv6, torv3, dns}},
		{"duplicates dropped", cat(ipv4, dns, ipv4), [][]byte{ipv4, dns}},
		{"unusable hostname kept, parsing goes on", cat(badDNS, ipv4), [][]byte{badDNS, ipv4}},
		{"unknown type stops", cat(ipv4, []byte{9, 1, 2, 3}, dns), [][]byte{ipv4}},
		{"truncated stops", cat(ipv4, ipv6[:10]), [][]byte{ipv4}},
		{"hostname without length", cat(ipv4, []byte{AddrHostname}), [][]byte{ipv4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitAddresses(tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d addresses %x, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("address %d = %x, want %x", i, []byte(got[i]), tt.want[i])
				}
			}
		})
	}
}

func TestPolicyDiff(t *testing.T) {
	p := Policy{CLTVExpiryDelta: 40, HTLCMinimumMsat: 1, FeeBaseMsat: 2, FeeProportionalMillionths: 3, HTLCMaximumMsat: 4}
	q := p
	if p.Diff(q) != 0 {
		t.Errorf("equal policies differ")
	}
	q.FeeBaseMsat, q.HTLCMaximumMsat = 9, 9
	if got := p.Diff(q); got != FieldFeeBaseMsat|FieldHTLCMaximumMsat {
		t.Errorf("Diff = %#x", got)
	}
	if got := p.Diff(Policy{}); got != AllFields {
		t.Errorf("Diff with zero policy = %#x, want all fields", got)
	}
}

func TestFitAddresses(t *testing.T) {
	ipv4 := func(i int) Address { return Address{AddrIPv4, 10, 0, byte(i >> 8), byte(i), 0x26, 0x07} }
	host := func(n int) Address {
		a := Address{AddrHostname, byte(n)}
		a = append(a, bytes.Repeat([]byte{'a'}, n)...)
		return append(a, 0x26, 0x07)
	}
	many := make([]Address, 300)
	for i := range many {
		many[i] = ipv4(i)
	}
	tests := []struct {
		name               string
		in                 []Address
		want               []Address
		tooLong, beyondMax int
	}{
		{"empty", []Address{}, []Address{}, 0, 0},
		{"longest hostname that fits", []Address{host(251)}, []Address{host(251)}, 0, 0},
		{"hostname one byte too long", []Address{ipv4(1), host(252), ipv4(2)}, []Address{ipv4(1), ipv4(2)}, 1, 0},
		{"exactly 255", many[:255], many[:255], 0, 0},
		{"300 addresses", many, many[:255], 0, 45},
		{"both", append([]Address{host(255)}, many...), many[:255], 1, 45},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got, long, beyond := FitAddresses(tt.in)
			if !slices.EqualFunc(got, tt.want, func(a, b Address) bool { return bytes.Equal(a, b) }) || long != tt.tooLong || beyond != tt.beyondMax {
				t.Errorf("got %d addresses (%d too long, %d beyond 255), want %d (%d, %d)", len(got), long, beyond, len(tt.want), tt.tooLong, tt.beyondMax)
			}
			if !slices.EqualFunc(in, tt.in, func(a, b Address) bool { return bytes.Equal(a, b) }) {
				t.Error("the input list was modified")
			}
			// What is kept always encodes in a version 2 node entry.
			d := Delta{Nodes: []NodeDelta{{NodeID: nodeID(t, "031b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f"), HasAddresses: true, Addresses: got}}}
			if _, err := d.Encode(Version2); err != nil {
				t.Errorf("encode the kept addresses: %v", err)
			}
		})
	}
}
