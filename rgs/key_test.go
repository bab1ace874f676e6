package rgs

import (
	"math/rand/v2"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
)

// TestValidKeyMatchesBtcec checks validKey against btcec.ParsePubKey on random
// and edge-case x coordinates.
func TestValidKeyMatchesBtcec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []NodeID
	for range 2000 {
		var id NodeID
		id[0] = byte(2 + rng.IntN(2))
		for i := 1; i < 33; i++ {
			id[i] = byte(rng.Uint32())
		}
		ids = append(ids, id)
	}
	var p NodeID
	p[0] = 2
	btcec.S256().P.FillBytes(p[1:])
	over := p
	over[32]++
	zero := NodeID{3}
	bad := NodeID{4}
	ids = append(ids, p, over, zero, bad)
	valid := 0
	for _, id := range ids {
		_, err := btcec.ParsePubKey(id[:])
		if got, want := validKey(&id), err == nil; got != want {
			t.Fatalf("validKey(%v) = %v, btcec says %v", id, got, want)
		}
		if err == nil {
			valid++
		}
	}
	if valid < 900 || valid > 1100 {
		t.Errorf("%d of %d random keys valid; expected about half", valid, len(ids))
	}
}
