package measure

import (
	"math"

	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// Join is what one node joining a ring costs the nodes already on it: the
// keys that move (all of them to the new node) and who gives them. Bootstrap
// streams each donor's share from that donor, so if every donor streams at the
// same rate the join takes as long as the largest donor's share: Speedup says
// how many times faster that is than streaming the same keys from one node.
type Join struct {
	Moved        float64 // fraction of all keys that move to the new node
	Donors       int     // nodes that give at least one key
	LargestDonor float64 // the largest donor's share of the moved keys
}

// Speedup is Moved over the largest donor's part of it: 1 when one node gives
// everything, the number of donors when they give equal shares.
func (j Join) Speedup() float64 {
	if j.LargestDonor == 0 {
		return 0
	}
	return 1 / j.LargestDonor
}

// JoinCost places keys on a v-vnode ring of nodes, adds newNode and reports
// what moved and where from.
func JoinCost(keys, nodes []string, newNode string, v int, h ring.Hash) Join {
	before := ring.New(v, ring.WithHash(h))
	after := ring.New(v, ring.WithHash(h))
	for _, n := range nodes {
		before.AddNode(n)
		after.AddNode(n)
	}
	after.AddNode(newNode)
	from := map[string]int{}
	moved := 0
	for _, k := range keys {
		if a, b := before.GetNode(k), after.GetNode(k); a != b {
			moved++
			from[a]++
		}
	}
	j := Join{Donors: len(from)}
	if len(keys) > 0 {
		j.Moved = float64(moved) / float64(len(keys))
	}
	for _, c := range from {
		j.LargestDonor = max(j.LargestDonor, float64(c)/float64(moved))
	}
	return j
}

// JoinStat summarises JoinCost for n nodes growing to n+1 at v vnodes, over
// sets node-name sets (set 0 is node-0 … node-<n-1> joined by node-<n>).
type JoinStat struct {
	N, V      int
	Canonical Join
	// Averages over the sets, and the range of Moved: one ring's share for
	// the new node is itself a random draw, wide at small V.
	Moved, Donors, Speedup float64
	MinMoved, MaxMoved     float64
	Sets                   int
}

// JoinTable measures JoinStat for every v in vs.
func JoinTable(keys []string, n int, vs []int, sets int, h ring.Hash) []JoinStat {
	sets = max(sets, 1)
	var out []JoinStat
	for _, v := range vs {
		st := JoinStat{N: n, V: v, Sets: sets, MinMoved: math.Inf(1)}
		for set := range sets {
			names := Nodes(n+1, set)
			j := JoinCost(keys, names[:n], names[n], v, h)
			if set == 0 {
				st.Canonical = j
			}
			st.Moved += j.Moved / float64(sets)
			st.Donors += float64(j.Donors) / float64(sets)
			st.Speedup += j.Speedup() / float64(sets)
			st.MinMoved, st.MaxMoved = min(st.MinMoved, j.Moved), max(st.MaxMoved, j.Moved)
		}
		out = append(out, st)
	}
	return out
}
