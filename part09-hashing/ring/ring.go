// Package ring is a consistent hash ring with virtual nodes, per-node weights,
// replica lookup (GetN), a bounded-load variant and jump hash for comparison.
//
// It keeps the article's API (AddNode, RemoveNode, GetNode, GetN, vnode keys
// "node#i") and fixes what the article's version gets wrong:
//
//   - The default hash is xxhash. The article's CRC32 (WithHash(CRC32)) is
//     linear, so every node's vnode points are a shifted copy of every other
//     node's and the load spread stops improving past about 100 vnodes.
//   - Two virtual nodes that hash to the same point no longer overwrite each
//     other in a map. Every point is kept, ties are ordered by node name, so the
//     ring (and every key's owner) depends only on the set of nodes, never on the
//     order they were added, and removing one node never deletes another's point.
//   - Every node on the ring owns at least one point, so GetN always finds n
//     distinct nodes and ends (the article's loops forever when a node's only
//     points were overwritten, holding the read lock that writers wait for).
//   - AddNode and RemoveNode are idempotent; AddWeightedNode rejects weights
//     whose point count would overflow.
//
// Reads never lock: writers build a new immutable snapshot and publish it
// through an atomic.Pointer. A lookup hashes the key, reads one entry of a
// small index over the top bits of the hash and searches the few points in
// that bucket (usually one), so GetNode costs about one hash and three memory
// loads, allocates nothing and never waits for a writer.
//
// Usage:
//
//	r := ring.New(ring.DefaultVirtualNodes) // xxhash
//	r.AddNode("cache-a")
//	r.AddNode("cache-b")
//	owner := r.GetNode("user:1001")
//	replicas := r.GetN("user:1001", 2) // owner first, then the next distinct node clockwise
package ring

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// DefaultVirtualNodes is the article's "production standard" of 200 vnodes per
// physical node. With the default xxhash each node's share of the keys then
// varies by about 1/√200 ≈ 7% (std-dev / mean), whatever the number of nodes;
// the chapter README has the measured table. More vnodes cost memory (8 bytes
// a point plus the index) and build time, not lookup time.
const DefaultVirtualNodes = 200

// MaxPointsPerNode bounds virtualNodes·weight for one node (16,777,216 points,
// 128 MiB). It keeps a typo'd weight from overflowing or exhausting memory.
const MaxPointsPerNode = 1 << 24

// ErrTooManyPoints is returned by AddWeightedNode when virtualNodes·weight
// exceeds MaxPointsPerNode.
var ErrTooManyPoints = errors.New("ring: too many points for one node")

// Ring is a consistent hash ring, safe for concurrent use: any number of
// goroutines may call GetNode/GetN while others call AddNode/RemoveNode.
// The zero value is not usable; call New.
type Ring struct {
	snap atomic.Pointer[snapshot]
	hash Hash

	vnodes int
	mu     sync.Mutex // serialises writers; readers use snap only
}

// snapshot is an immutable view of the ring. points is sorted; each holds a
// vnode's hash in the high 32 bits and the index in nodes of its owner in the
// low 32 bits, so sorting the uint64s orders points by hash and equal hashes
// by node name (nodes is sorted): the order is a function of the node set
// alone. index[b] is the first point whose hash has top bits ≥ b, so a lookup
// searches only points[index[b]:index[b+1]].
type snapshot struct {
	points  []uint64
	index   []uint32 // 1<<(32-shift) + 1 entries
	shift   uint     // 32 - bits of the hash used by index
	nodes   []string
	weights []int32 // weights[i] is nodes[i]'s weight
}

// Option configures a Ring.
type Option func(*Ring)

// WithHash replaces the default XXHash with another Hash: CRC32 to reproduce
// the article's ring, FNV1a, or your own. Every ring that must agree on key
// placement has to use the same Hash.
func WithHash(h Hash) Option {
	return func(r *Ring) {
		if h != nil {
			r.hash = h
		}
	}
}

// New returns an empty ring that places virtualNodes points per unit of weight
// for every physical node, hashed with XXHash unless WithHash says otherwise.
// It panics if virtualNodes is not in [1, MaxPointsPerNode]: that is a
// constant in the caller's code, not an input to handle.
func New(virtualNodes int, opts ...Option) *Ring {
	if virtualNodes < 1 || virtualNodes > MaxPointsPerNode {
		panic(fmt.Sprintf("ring: virtualNodes must be in [1, %d], got %d", MaxPointsPerNode, virtualNodes))
	}
	r := &Ring{hash: XXHash, vnodes: virtualNodes}
	for _, o := range opts {
		o(r)
	}
	r.snap.Store(newSnapshot(nil, nil, nil))
	return r
}

// AddNode adds node with weight 1. Adding a node that is already on the ring
// with weight 1 changes nothing.
func (r *Ring) AddNode(node string) {
	_ = r.AddWeightedNode(node, 1) // cannot fail: New checked virtualNodes
}

// AddWeightedNode adds node with virtualNodes·weight points ("node#0",
// "node#1", ...), so it receives about weight times the keys of a weight-1
// node. Calling it again for a node already on the ring sets the new weight:
// points "node#i" for the lower weight are kept, so raising the weight only
// moves keys to node and lowering it only moves keys away from it. A weight
// below 1 removes node. It returns ErrTooManyPoints, and changes nothing, if
// virtualNodes·weight exceeds MaxPointsPerNode.
func (r *Ring) AddWeightedNode(node string, weight int) error {
	if weight < 1 {
		r.RemoveNode(node)
		return nil
	}
	if weight > MaxPointsPerNode/r.vnodes {
		return fmt.Errorf("%w: %d virtual nodes × weight %d > %d", ErrTooManyPoints, r.vnodes, weight, MaxPointsPerNode)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.snap.Load().weight(node) == weight {
		return nil
	}
	hashes := make([]uint32, r.vnodes*weight)
	buf := make([]byte, 0, len(node)+12)
	for i := range hashes {
		buf = strconv.AppendInt(append(append(buf[:0], node...), '#'), int64(i), 10)
		hashes[i] = r.hash(stringOf(buf))
	}
	slices.Sort(hashes)
	r.replace(node, int32(weight), hashes)
	return nil
}

// RemoveNode takes node and all its points off the ring. Removing a node that
// is not on the ring changes nothing. Only the keys node owned move, each to the
// next point clockwise.
func (r *Ring) RemoveNode(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.snap.Load().weight(node) == 0 {
		return
	}
	r.replace(node, 0, nil)
}

// replace publishes a snapshot in which node has weight and owns exactly
// hashes (sorted; none removes it). Called with mu held. It merges hashes into
// the current points in one linear pass, ordering equal hashes by node name,
// so the result is the same as sorting every point of the node set from
// scratch: that is what makes collisions resolve the same way whatever order
// nodes were added in.
func (r *Ring) replace(node string, weight int32, hashes []uint32) {
	old := r.snap.Load()
	pos, had := slices.BinarySearch(old.nodes, node)
	nodes, weights := slices.Clone(old.nodes), slices.Clone(old.weights)
	switch {
	case had && len(hashes) == 0:
		nodes, weights = slices.Delete(nodes, pos, pos+1), slices.Delete(weights, pos, pos+1)
	case had:
		weights[pos] = weight
	default:
		nodes, weights = slices.Insert(nodes, pos, node), slices.Insert(weights, pos, weight)
	}
	// Old owner index -> new one. Name order is kept, so merged points stay
	// ordered by (hash, owner).
	renumber := func(o uint32) uint32 {
		switch {
		case !had && o >= uint32(pos):
			return o + 1
		case had && len(hashes) == 0 && o > uint32(pos):
			return o - 1
		}
		return o
	}
	self := uint64(pos)
	points := make([]uint64, 0, len(old.points)+len(hashes))
	j := 0
	for _, p := range old.points {
		o := uint32(p)
		if had && o == uint32(pos) {
			continue // node's previous points are replaced by hashes
		}
		p = p&^0xffffffff | uint64(renumber(o))
		for j < len(hashes) && uint64(hashes[j])<<32|self < p {
			points = append(points, uint64(hashes[j])<<32|self)
			j++
		}
		points = append(points, p)
	}
	for ; j < len(hashes); j++ {
		points = append(points, uint64(hashes[j])<<32|self)
	}
	r.snap.Store(newSnapshot(points, nodes, weights))
}

// newSnapshot builds the bucket index over sorted points: about one bucket per
// point (at most 1<<16 buckets), so a bucket holds one point on average.
func newSnapshot(points []uint64, nodes []string, weights []int32) *snapshot {
	b := min(max(bits.Len(uint(len(points))), 1), 16)
	s := &snapshot{points: points, nodes: nodes, weights: weights, shift: uint(32 - b),
		index: make([]uint32, 1<<b+1)}
	i := 0
	for bucket := range s.index {
		for i < len(points) && points[i]>>(32+s.shift) < uint64(bucket) {
			i++
		}
		s.index[bucket] = uint32(i)
	}
	return s
}

// search returns the index of the first point whose hash is ≥ h, wrapping to
// 0 past the last point. The snapshot must not be empty. The point lies in
// h's bucket or is the first point of the next non-empty one, which is
// points[index[b+1]]; so the binary search runs over the bucket only.
func (s *snapshot) search(h uint32) int {
	b := h >> s.shift
	lo, hi := int(s.index[b]), int(s.index[b+1])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.points[m]>>32 < uint64(h) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(s.points) {
		return 0
	}
	return lo
}

// owner returns the index in nodes of the node that owns point i.
func (s *snapshot) owner(i int) uint32 { return uint32(s.points[i]) }

// weight returns node's weight, 0 when it is not on the ring.
func (s *snapshot) weight(node string) int {
	if i, ok := slices.BinarySearch(s.nodes, node); ok {
		return int(s.weights[i])
	}
	return 0
}

// GetNode returns the physical node that owns key: the owner of the first point
// clockwise from hash(key). It returns "" when the ring is empty. It does not
// allocate.
func (r *Ring) GetNode(key string) string {
	s := r.snap.Load()
	if len(s.points) == 0 {
		return ""
	}
	return s.nodes[s.owner(s.search(r.hash(key)))]
}

// GetN returns up to n distinct physical nodes for key, in ring order starting
// with GetNode(key): the replica set for a replication factor of n (Cassandra's
// RF=3 walks the ring the same way). When n exceeds the number of physical
// nodes it returns all of them; n < 1 or an empty ring returns nil. The walk
// visits each point at most once, so it ends even on a ring of colliding points.
func (r *Ring) GetN(key string, n int) []string {
	s := r.snap.Load()
	if n < 1 || len(s.points) == 0 {
		return nil
	}
	n = min(n, len(s.nodes))
	out := make([]string, 0, n)
	var small [64]bool // most rings have fewer nodes: no second allocation
	var seen []bool
	if len(s.nodes) > len(small) {
		seen = make([]bool, len(s.nodes))
	} else {
		seen = small[:len(s.nodes)]
	}
	for i, start := 0, s.search(r.hash(key)); i < len(s.points) && len(out) < n; i++ {
		j := start + i
		if j >= len(s.points) {
			j -= len(s.points)
		}
		if o := s.owner(j); !seen[o] {
			seen[o] = true
			out = append(out, s.nodes[o])
		}
	}
	return out
}

// Nodes returns the physical nodes on the ring, sorted by name.
func (r *Ring) Nodes() []string { return slices.Clone(r.snap.Load().nodes) }

// Len returns the number of physical nodes.
func (r *Ring) Len() int { return len(r.snap.Load().nodes) }

// Points returns the number of virtual-node points on the ring.
func (r *Ring) Points() int { return len(r.snap.Load().points) }

// Weight returns node's weight, or 0 if node is not on the ring.
func (r *Ring) Weight(node string) int { return r.snap.Load().weight(node) }
