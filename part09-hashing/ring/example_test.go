package ring_test

import (
	"fmt"

	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// A cache client picks the node for a key, and the replicas after it.
func Example() {
	r := ring.New(ring.DefaultVirtualNodes) // xxhash
	for _, n := range []string{"cache-a", "cache-b", "cache-c", "cache-d"} {
		r.AddNode(n)
	}
	fmt.Println(r.GetNode("user:1001"))
	fmt.Println(r.GetN("user:1001", 3)) // replicas: three distinct nodes, owner first
	fmt.Println(len(r.GetN("user:1001", 10)), r.Points())
	// Output:
	// cache-a
	// [cache-a cache-d cache-b]
	// 4 800
}

// New uses xxhash; WithHash(ring.CRC32) rebuilds the article's ring, which
// places keys differently (and spreads them worse).
func ExampleNew() {
	nodes := []string{"node-a", "node-b", "node-c", "node-d", "node-e"}
	xx, crc := ring.New(200), ring.New(200, ring.WithHash(ring.CRC32))
	for _, n := range nodes {
		xx.AddNode(n)
		crc.AddNode(n)
	}
	fmt.Println(xx.GetNode("user:1001"), crc.GetNode("user:1001"))
	// Output:
	// node-e node-c
}

// Removing a node moves only the keys it owned; the others stay put.
func ExampleRing_RemoveNode() {
	r := ring.New(ring.DefaultVirtualNodes)
	for _, n := range []string{"a", "b", "c"} {
		r.AddNode(n)
	}
	before := map[string]string{}
	keys := []string{"k1", "k2", "k3", "k4", "k5", "k6"}
	for _, k := range keys {
		before[k] = r.GetNode(k)
	}
	r.RemoveNode("b")
	for _, k := range keys {
		fmt.Printf("%s: %s -> %s\n", k, before[k], r.GetNode(k))
	}
	// Output:
	// k1: c -> c
	// k2: b -> c
	// k3: b -> a
	// k4: c -> c
	// k5: c -> c
	// k6: c -> c
}

// A node with twice the capacity gets weight 2, and bounded loads keep every
// node within 25% of its weighted share.
func ExampleNewBounded() {
	r := ring.New(ring.DefaultVirtualNodes)
	r.AddNode("small")
	if err := r.AddWeightedNode("large", 2); err != nil {
		panic(err)
	}
	b, err := ring.NewBounded(r, 0.25)
	if err != nil {
		panic(err)
	}
	for i := range 3000 {
		b.Place(fmt.Sprintf("conn:%d", i))
	}
	fmt.Println(b.Capacity("small"), b.Capacity("large"))
	_, err = ring.NewBounded(r, 0)
	fmt.Println(err)
	// Output:
	// 1251 2501
	// ring: bounded-load epsilon must be finite and > 0, got 0
}
