// Package measure regenerates the chapter's numbers: how evenly a ring spreads
// keys over nodes for a given number of virtual nodes, and how many keys move
// when a node is added or removed under modulo hashing, a ring, jump hash and
// bounded-load consistent hashing. Nothing here is typed in: every figure is
// computed from the keys and nodes it is given.
package measure

import (
	"fmt"
	"math"
	"strconv"

	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// Keys returns the article's k keys "key:0" … "key:<k-1>".
func Keys(k int) []string {
	keys := make([]string, k)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	return keys
}

// Nodes returns n node names. Set 0 is the canonical "node-0" … "node-<n-1>";
// other sets give unrelated names ("s<set>-node-<i>"), so that averaging over
// sets averages over where the vnode points happen to fall.
func Nodes(n, set int) []string {
	nodes := make([]string, n)
	for i := range nodes {
		if set == 0 {
			nodes[i] = "node-" + strconv.Itoa(i)
		} else {
			nodes[i] = fmt.Sprintf("s%d-node-%d", set, i)
		}
	}
	return nodes
}

// Spread summarises the number of keys per physical node.
type Spread struct {
	Mean   float64 // keys per node
	StdDev float64 // population standard deviation (the mean, keys/nodes, is exact)
	Max    float64 // keys on the fullest node
}

// CV is the coefficient of variation, std-dev / mean: the article's "load std-dev".
func (s Spread) CV() float64 { return s.StdDev / s.Mean }

// MaxOverMean is the fullest node's load relative to the mean: what sizes a
// cluster, since the hottest node saturates first.
func (s Spread) MaxOverMean() float64 { return s.Max / s.Mean }

// SpreadOf summarises per-node counts. Nodes that got no key must be present
// as zeros.
func SpreadOf(counts []int) Spread {
	if len(counts) == 0 {
		return Spread{}
	}
	var sum, mx float64
	for _, c := range counts {
		sum += float64(c)
		mx = max(mx, float64(c))
	}
	mean := sum / float64(len(counts))
	var ss float64
	for _, c := range counts {
		d := float64(c) - mean
		ss += d * d
	}
	return Spread{Mean: mean, StdDev: math.Sqrt(ss / float64(len(counts))), Max: mx}
}

// Loads places every key with place and summarises the load on nodes.
func Loads(nodes, keys []string, place func(string) string) Spread {
	idx := make(map[string]int, len(nodes))
	for i, n := range nodes {
		idx[n] = i
	}
	counts := make([]int, len(nodes))
	for _, k := range keys {
		counts[idx[place(k)]]++
	}
	return SpreadOf(counts)
}

// ArticleModel is the article's formula for the load std-dev / mean, 1/√(N·V).
func ArticleModel(n, v int) float64 { return 1 / math.Sqrt(float64(n*v)) }

// ArcModel is the expected std-dev / mean for N·V random points and k keys.
// A node owns V of the N·V arcs; the arcs are exponential-like spacings, so its
// share is Beta(V, (N−1)·V) with CV² = (N−1)/(N·V+1), about 1/V: the spread per
// node falls as 1/√V and barely depends on N. Placing k keys adds binomial
// noise, CV² += (N−1)/k.
func ArcModel(n, v, k int) float64 { return arcModel(float64(n), float64(v), float64(k)) }

func arcModel(n, v, k float64) float64 { return math.Sqrt((n-1)/(n*v+1) + (n-1)/k) }

// Article lists the article's load std-dev figures (5 nodes, 100,000 keys) by
// V, quoted so the demo and chart can show them beside the measurement.
var Article = map[int]float64{1: 0.55, 10: 0.18, 100: 0.056, 200: 0.040, 1000: 0.018}

// ArticleBenchmark lists the output the article's BenchmarkLoadDistribution
// claims in its comments, by V, for ArticleNodes and 100,000 keys.
var ArticleBenchmark = map[int]float64{1: 0.552, 10: 0.181, 100: 0.058, 200: 0.041}

// ArticleNodes are the node names of the article's benchmark.
var ArticleNodes = []string{"node-a", "node-b", "node-c", "node-d", "node-e"}

// RingSpread builds a v-vnode ring of nodes with hash h and returns how it
// spreads keys.
func RingSpread(nodes, keys []string, v int, h ring.Hash) Spread {
	r := ring.New(v, ring.WithHash(h))
	for _, n := range nodes {
		r.AddNode(n)
	}
	return Loads(nodes, keys, r.GetNode)
}

// LoadStat is one cell of the std-dev table.
type LoadStat struct {
	N, V int
	// Canonical is the spread with nodes node-0 … node-<N-1>: one ring, as the
	// article measured it.
	Canonical Spread
	// CV is the root-mean-square std-dev / mean over Sets independent node-name
	// sets: one ring's std-dev from 5 or 10 nodes is itself noisy (±30% at N=5),
	// so the average is what to compare with a model.
	CV float64
	// MaxOverMean is the hottest node's load over the mean, averaged over the
	// sets: what sizes a cluster.
	MaxOverMean float64
	Sets        int
}

// LoadTable measures the spread of keys for every N in ns and V in vs over sets
// node-name sets, with hash h.
func LoadTable(ns, vs []int, keys []string, sets int, h ring.Hash) []LoadStat {
	sets = max(sets, 1)
	var out []LoadStat
	for _, n := range ns {
		for _, v := range vs {
			st := LoadStat{N: n, V: v, Sets: sets}
			var sumSq float64
			for set := range sets {
				sp := RingSpread(Nodes(n, set), keys, v, h)
				if set == 0 {
					st.Canonical = sp
				}
				sumSq += sp.CV() * sp.CV()
				st.MaxOverMean += sp.MaxOverMean() / float64(sets)
			}
			st.CV = math.Sqrt(sumSq / float64(sets))
			out = append(out, st)
		}
	}
	return out
}

// RandomArcsMaxOverMean is the expected hottest node's load over the mean when
// each of n nodes has one random point (V=1): the longest of the n arcs between
// n uniform points is H_n/n of the ring on average (H_n the n-th harmonic
// number), so the hottest node carries H_n times the mean: 2.28 at n=5, 2.93 at
// n=10, 5.19 at n=100. No node can carry more than n times the mean.
func RandomArcsMaxOverMean(n int) float64 {
	h := 0.0
	for i := n; i >= 1; i-- {
		h += 1 / float64(i)
	}
	return h
}

// Hottest is the hottest node's load over the mean with one point per node
// (V=1) for N nodes: the article's "some nodes 5×+ overloaded".
type Hottest struct {
	N int
	// CRC32 and XXHash are the rings of nodes node-0 … node-<N-1>.
	CRC32, XXHash float64
	// XXHashAvg averages XXHash rings over Sets node-name sets.
	XXHashAvg float64
	Sets      int
}

// HottestAtV1 measures Hottest for every N in ns.
func HottestAtV1(ns []int, keys []string, sets int) []Hottest {
	out := make([]Hottest, 0, len(ns))
	for _, n := range ns {
		out = append(out, Hottest{
			N:         n,
			CRC32:     RingSpread(Nodes(n, 0), keys, 1, ring.CRC32).MaxOverMean(),
			XXHash:    RingSpread(Nodes(n, 0), keys, 1, ring.XXHash).MaxOverMean(),
			XXHashAvg: LoadTable([]int{n}, []int{1}, keys, sets, ring.XXHash)[0].MaxOverMean,
			Sets:      max(sets, 1),
		})
	}
	return out
}
