package balancer

import (
	"fmt"
	"strconv"
	"testing"
)

// BenchmarkPick measures one pick per algorithm as the pool grows: the
// article's complexity column, measured. Round robin and P2C do not move
// with N; the hash ring grows slowly (a binary search over N·V points, which
// leave the CPU cache as N grows); smooth weighted round robin and least
// connections scan every backend, O(N).
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{4, 64, 1024} {
		bs := make([]*Backend, n)
		for i := range bs {
			bs[i] = NewBackend("b"+strconv.Itoa(i), "", 1+i%3)
		}
		for _, tt := range []struct {
			name string
			algo Algorithm
		}{
			{"rr", new(RoundRobin)},
			{"swrr", new(SmoothWeighted)},
			{"leastconn", new(LeastConn)},
			{"p2c", NewP2C(nil)},
			{"hash", NewConsistentHash(bs, 0, nil)},
		} {
			p, err := NewPool(tt.algo, bs...)
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 1024)
			for i := range keys {
				keys[i] = "user-" + strconv.Itoa(i)
			}
			b.Run(fmt.Sprintf("algo=%s/n=%d", tt.name, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := p.Pick(keys[i%len(keys)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}
