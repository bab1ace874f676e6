package rgs

import "github.com/decred/dcrd/dcrec/secp256k1/v4"

// validKey reports whether id is a valid compressed secp256k1 public key: prefix
// 02 or 03, x below the field prime, and a y exists for x. This is what
// btcec.ParsePubKey accepts, without building the key.
func validKey(id *NodeID) bool {
	if id[0] != 0x02 && id[0] != 0x03 {
		return false
	}
	var x, y secp256k1.FieldVal
	if overflow := x.SetByteSlice(id[1:]); overflow {
		return false
	}
	return secp256k1.DecompressY(&x, id[0] == 0x03, &y)
}
