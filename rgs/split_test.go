package rgs

import (
	"bytes"
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
