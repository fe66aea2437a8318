package measure

import (
	"fmt"
	"slices"

	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// Scheme is a way of placing keys on a list of nodes. Build returns the
// placement for one membership; comparing two builds shows what a membership
// change costs.
type Scheme struct {
	Name  string
	Build func(nodes []string) func(key string) string
}

// Modulo is hash(key) mod N: perfectly even, but changing N moves about
// N/(N+1) of the keys.
func Modulo(h ring.Hash) Scheme {
	return Scheme{Name: "modulo", Build: func(nodes []string) func(string) string {
		nodes = slices.Clone(nodes)
		return func(k string) string { return nodes[h(k)%uint32(len(nodes))] }
	}}
}

// Ring is the consistent hash ring with v virtual nodes per node.
func Ring(v int, h ring.Hash) Scheme {
	return Scheme{Name: fmt.Sprintf("ring V=%d", v), Build: func(nodes []string) func(string) string {
		r := ring.New(v, ring.WithHash(h))
		for _, n := range nodes {
			r.AddNode(n)
		}
		return r.GetNode
	}}
}

// Jump is jump consistent hash over the node list, bucket i = nodes[i]. Removing
// a node other than the last renumbers the ones after it.
func Jump() Scheme {
	return Scheme{Name: "jump", Build: func(nodes []string) func(string) string {
		nodes = slices.Clone(nodes)
		return func(k string) string { return nodes[ring.JumpString(k, len(nodes))] }
	}}
}

// BoundedLoad places keys, in the order given, with consistent hashing with
// bounded loads over a v-vnode ring with slack eps. Its placement depends on
// arrival order, so it is built for a fixed key list and answers only for it
// ("" for other keys).
func BoundedLoad(v int, eps float64, h ring.Hash, keys []string) Scheme {
	return Scheme{Name: fmt.Sprintf("bounded-load ε=%.2f V=%d", eps, v), Build: func(nodes []string) func(string) string {
		r := ring.New(v, ring.WithHash(h))
		for _, n := range nodes {
			r.AddNode(n)
		}
		b, err := ring.NewBounded(r, eps)
		if err != nil {
			panic(err) // eps is the caller's constant
		}
		placed := make(map[string]string, len(keys))
		for _, k := range keys {
			placed[k] = b.Place(k)
		}
		return func(k string) string { return placed[k] }
	}}
}

// Moved returns the fraction of keys that before and after place on different
// nodes.
func Moved(keys []string, before, after func(string) string) float64 {
	if len(keys) == 0 {
		return 0
	}
	moved := 0
	for _, k := range keys {
		if before(k) != after(k) {
			moved++
		}
	}
	return float64(moved) / float64(len(keys))
}

// RemapRow is what one scheme costs on membership changes.
type RemapRow struct {
	Scheme        string
	Add3to4       float64 // node-3 joins node-0..2 (the same keys move back when it leaves)
	RemoveMiddle  float64 // node-1 leaves node-0..3
	Add10to11     float64 // node-10 joins node-0..9
	MaxOverMean10 float64 // hottest node / mean with node-0..9
}

// Remap measures every scheme on the same keys and membership changes.
func Remap(keys []string, schemes ...Scheme) []RemapRow {
	n3, n4, n10, n11 := Nodes(3, 0), Nodes(4, 0), Nodes(10, 0), Nodes(11, 0)
	without1 := []string{"node-0", "node-2", "node-3"}
	var rows []RemapRow
	for _, s := range schemes {
		p3, p4, p10 := s.Build(n3), s.Build(n4), s.Build(n10)
		rows = append(rows, RemapRow{
			Scheme:        s.Name,
			Add3to4:       Moved(keys, p3, p4),
			RemoveMiddle:  Moved(keys, p4, s.Build(without1)),
			Add10to11:     Moved(keys, p10, s.Build(n11)),
			MaxOverMean10: Loads(n10, keys, p10).MaxOverMean(),
		})
	}
	return rows
}
