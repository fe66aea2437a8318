package ring

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
)

// Bounded places keys with consistent hashing with bounded loads (Mirrokni,
// Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2018): no
// node may hold more than its share of ceil((1+ε)·keys), and a key whose first
// node is full walks clockwise to the next node with room. A node's share is
// its weight over the total weight, so a weight-3 node may hold three times
// the keys of a weight-1 node, as on the plain ring. The cap turns the ring's
// spread (and its outliers at small V) into a hard bound on the hottest node,
// for a small price in keys moved when nodes come and go.
//
// Bounded is stateful: Place records the load it adds and the caller keeps the
// key -> node answer (as a load balancer keeps a connection's backend); Remove
// gives the slot back. buraksezer/consistent applies the same rule to a fixed
// number of partitions instead of keys, which keeps lookups stateless.
// Bounded is safe for concurrent use.
type Bounded struct {
	ring *Ring
	eps  float64

	mu   sync.Mutex
	load map[string]int // keys placed per node, including nodes that left the ring
}

// NewBounded returns a bounded-load placer over r with slack epsilon (0.25 lets
// the hottest node hold 25% over its share). epsilon must be finite and > 0:
// the paper's bound on keys moved grows as 1/ε², and an infinite slack is no
// bound at all. r may still change; loads of nodes that left the ring are
// ignored.
func NewBounded(r *Ring, epsilon float64) (*Bounded, error) {
	if !(epsilon > 0) || math.IsInf(epsilon, 1) {
		return nil, fmt.Errorf("ring: bounded-load epsilon must be finite and > 0, got %v", epsilon)
	}
	return &Bounded{ring: r, eps: epsilon, load: make(map[string]int)}, nil
}

// limits returns the keys placed on the nodes of s and their total weight.
// Keys on a node that left the ring must not raise the caps of the nodes that
// remain, so they are not counted. Called with mu held.
func (b *Bounded) limits(s *snapshot) (placed, totalWeight int) {
	for i, n := range s.nodes {
		placed += b.load[n]
		totalWeight += int(s.weights[i])
	}
	return placed, totalWeight
}

// capacity is a node's cap once one more key is placed:
// ceil((1+ε)·(placed+1)·weight/totalWeight). The caps add up to at least
// (1+ε)·(placed+1) > placed, so some node always has room. A cap above
// placed+1 never binds and is clamped there, so a huge ε cannot overflow.
func (b *Bounded) capacity(placed, totalWeight int, weight int32) int {
	c := math.Ceil((1 + b.eps) * float64(placed+1) * float64(weight) / float64(totalWeight))
	return int(min(c, float64(placed+1)))
}

// Capacity returns the most keys node may hold after the next Place, 0 if
// node is not on the ring.
func (b *Bounded) Capacity(node string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.ring.snap.Load()
	i, ok := slices.BinarySearch(s.nodes, node)
	if !ok {
		return 0
	}
	placed, total := b.limits(s)
	return b.capacity(placed, total, s.weights[i])
}

// Place assigns key to the first node clockwise from hash(key) whose load is
// below its capacity, counts the key against that node and returns it. It
// returns "" when the ring is empty.
func (b *Bounded) Place(key string) string {
	s := b.ring.snap.Load()
	if len(s.points) == 0 {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	placed, total := b.limits(s)
	start := s.search(b.ring.hash(key))
	for i := range len(s.points) {
		j := start + i
		if j >= len(s.points) {
			j -= len(s.points)
		}
		o := s.owner(j)
		if node := s.nodes[o]; b.load[node] < b.capacity(placed, total, s.weights[o]) {
			b.load[node]++
			return node
		}
	}
	// Unreachable: the caps add up to more than the keys placed, so some node
	// is below its cap, and every node has at least one point.
	panic("ring: bounded-load invariant broken: every node is full")
}

// Remove records that one key placed on node is gone.
func (b *Bounded) Remove(node string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.load[node] > 0 {
		b.load[node]--
	}
}

// Loads returns a copy of the number of keys placed on each node.
func (b *Bounded) Loads() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.load)
}
