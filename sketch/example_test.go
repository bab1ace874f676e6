package sketch_test

import (
	"fmt"

	"github.com/lnsync/lnsync/sketch"
)

// Alice has the elements 3000…3009 and Bob 3002…3011 (the libminisketch
// README example). Alice sends her serialized sketch; Bob merges it into his
// own and decodes the symmetric difference.
func Example() {
	alice, err := sketch.New(12, 4)
	if err != nil {
		panic(err)
	}
	for i := uint64(3000); i < 3010; i++ {
		alice.Add(i)
	}
	msg := alice.Serialize()
	fmt.Printf("Alice sends %d bytes: %x\n", len(msg), msg)

	bob, _ := sketch.New(12, 4)
	for i := uint64(3002); i < 3012; i++ {
		bob.Add(i)
	}
	received, _ := sketch.New(12, 4)
	if err := received.Deserialize(msg); err != nil {
		panic(err)
	}
	if err := bob.Merge(received); err != nil {
		panic(err)
	}
	diff, err := bob.Decode(4)
	if err != nil {
		fmt.Println("more than 4 differences")
		return
	}
	fmt.Println("in only one of the two sets:", diff)
	// Output:
	// Alice sends 6 bytes: 01e0d2f97469
	// in only one of the two sets: [3000 3001 3010 3011]
}

// A 32-bit sketch that decodes up to 8 differences with at most a 2^−16
// chance of a wrong result needs capacity 9.
func ExampleComputeCapacity() {
	fmt.Println(sketch.ComputeCapacity(32, 8, 16))
	fmt.Println(sketch.ComputeMaxElements(32, 9, 16))
	// Output:
	// 9
	// 9
}
