package ring_test

import (
	"fmt"

	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

func Example() {
	r := ring.New(ring.DefaultVirtualNodes, ring.WithHash(ring.XXHash))
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
