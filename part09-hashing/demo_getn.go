package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sysdesign-masterclass/golang/part09-hashing/measure"
	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// getnDemo shows replica sets, the article's GetN hang case, weights and
// bounded loads over weights.
func getnDemo(_ context.Context, w io.Writer, c config) error {
	nodes := measure.Nodes(5, 0)
	xx, crc := ring.New(ring.DefaultVirtualNodes), ring.New(ring.DefaultVirtualNodes, ring.WithHash(ring.CRC32))
	for _, n := range nodes {
		xx.AddNode(n)
		crc.AddNode(n)
	}
	section(w, "GetNode / GetN on a 5-node ring (V=%d, xxhash; the article's CRC32 ring beside it)", ring.DefaultVirtualNodes)
	var rows [][]string
	for _, k := range []string{"user:1001", "session:7f3a", "order:42", "cart:alice"} {
		rows = append(rows, []string{k, xx.GetNode(k), fmt.Sprint(xx.GetN(k, 3)), fmt.Sprint(xx.GetN(k, 9)), crc.GetNode(k)})
	}
	if err := table(w, []string{"key", "GetNode", "GetN(3)", "GetN(9)", "GetNode crc32"}, rows); err != nil {
		return err
	}

	// Two names whose only vnode points collide under CRC32 (found by search):
	// the article's map keeps one, so its GetN(key, 2) loops forever.
	a, b := "node-8755d764", "node-4170cb18"
	pair := ring.New(1, ring.WithHash(ring.CRC32))
	pair.AddNode(a)
	pair.AddNode(b)
	fmt.Fprintf(w, "V=1, crc32(%s#0) = crc32(%s#0) = %#08x: %d points kept, GetN(user:1001, 2) = %v\n",
		a, b, ring.CRC32(a+"#0"), pair.Points(), pair.GetN("user:1001", 2))

	section(w, "Weights: node-4 has weight 2, node-0…node-3 weight 1 (V=%d, %d keys)", ring.DefaultVirtualNodes, len(c.keys))
	rows = rows[:0]
	for _, h := range []string{"xxhash", "crc32"} {
		r := ring.New(ring.DefaultVirtualNodes, ring.WithHash(ring.Hashes[h]))
		for _, n := range nodes[:4] {
			r.AddNode(n)
		}
		if err := r.AddWeightedNode(nodes[4], 2); err != nil {
			return err
		}
		rows = append(rows, weightRow("ring "+h, nodes, c.keys, r.GetNode))
		bl, err := ring.NewBounded(r, 0.05)
		if err != nil {
			return err
		}
		rows = append(rows, weightRow("bounded ε=0.05 "+h, nodes, c.keys, bl.Place))
	}
	if err := table(w, []string{"placement", "node-4 share", "node-4 / mean of the others", "hottest / weighted share"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(w, "article: 2× virtual nodes attract 2× traffic. Bounded loads cap each node at (1+ε) × its weighted share.")
	return nil
}

// weightRow places keys and reports how node-4 (weight 2) fares against the
// weight-1 nodes, and the hottest node's load over its weighted share
// (keys·weight/total weight), which bounded loads cap at 1+ε.
func weightRow(name string, nodes, keys []string, place func(string) string) []string {
	count := map[string]int{}
	for _, k := range keys {
		count[place(k)]++
	}
	heavy := float64(count[nodes[4]])
	share := float64(len(keys)) / 6 // weights 1, 1, 1, 1, 2
	light, hottest := 0.0, heavy/(2*share)
	for _, n := range nodes[:4] {
		light += float64(count[n]) / 4
		hottest = max(hottest, float64(count[n])/share)
	}
	return []string{name, pct(heavy / float64(len(keys))), fmt.Sprintf("%.2f×", heavy/light), fmt.Sprintf("%.3f", hottest)}
}
