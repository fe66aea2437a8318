package ring

import (
	"fmt"
	"maps"
	"math"
	"sync"
)

// Bounded places keys with consistent hashing with bounded loads (Mirrokni,
// Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2018): no
// node may hold more than ceil((1+ε)·mean) keys, and a key whose first node is
// full walks clockwise to the next node with room. The cap turns the ring's
// few-percent spread (and its outliers at small V) into a hard bound on the
// hottest node, for a small price in keys moved when nodes come and go.
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
// the hottest node hold 25% over the mean). It panics if epsilon is negative or
// NaN. r may still change; loads of nodes that left the ring are ignored.
func NewBounded(r *Ring, epsilon float64) *Bounded {
	if !(epsilon >= 0) {
		panic(fmt.Sprintf("ring: bounded-load epsilon must be >= 0, got %v", epsilon))
	}
	return &Bounded{ring: r, eps: epsilon, load: make(map[string]int)}
}

// capacity is ceil((1+ε)·(placed+1)/nodes): the cap that holds once one more key
// is placed, so that some node always has room. placed counts only the keys on
// the nodes of s: keys on a node that left the ring must not raise the cap of
// the nodes that remain. Called with mu held.
func (b *Bounded) capacity(s *snapshot) int {
	placed := 0
	for _, n := range s.nodes {
		placed += b.load[n]
	}
	return int(math.Ceil((1 + b.eps) * float64(placed+1) / float64(len(s.nodes))))
}

// Capacity returns the most keys a node may hold after the next Place.
func (b *Bounded) Capacity() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.ring.snap.Load()
	if len(s.nodes) == 0 {
		return 0
	}
	return b.capacity(s)
}

// Place assigns key to the first node clockwise from hash(key) whose load is
// below capacity, counts the key against that node and returns it. It returns ""
// when the ring is empty.
func (b *Bounded) Place(key string) string {
	s := b.ring.snap.Load()
	if len(s.hashes) == 0 {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.capacity(s)
	start := s.search(b.ring.hash(key))
	for i := range len(s.hashes) {
		j := start + i
		if j >= len(s.hashes) {
			j -= len(s.hashes)
		}
		node := s.nodes[s.owners[j]]
		if b.load[node] < limit {
			b.load[node]++
			return node
		}
	}
	// Unreachable: limit >= (placed+1)/nodes > placed/nodes, so at least one
	// node is below it, and every node has at least one point.
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
