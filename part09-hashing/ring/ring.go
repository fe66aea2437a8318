// Package ring is a consistent hash ring with virtual nodes, per-node weights,
// replica lookup (GetN), a bounded-load variant and jump hash for comparison.
//
// It keeps the article's API (AddNode, RemoveNode, GetNode, GetN, vnode keys
// "node#i", CRC32 by default) and fixes what the article's version gets wrong:
//
//   - Two virtual nodes that hash to the same point no longer overwrite each
//     other in a map. Every point is kept, ties are ordered by node name, so the
//     ring (and every key's owner) depends only on the set of nodes, never on the
//     order they were added, and removing one node never deletes another's point.
//   - GetN returns n distinct physical nodes (fewer only when the ring has fewer).
//   - AddNode and RemoveNode are idempotent.
//
// Reads never lock: writers build a new immutable snapshot (sorted []uint32
// points with a parallel []int32 owner index) and publish it through an
// atomic.Pointer, so GetNode is a hash, a binary search and two slice loads, with
// no allocation and no contention with other readers or with writers.
package ring

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// DefaultVirtualNodes is the article's recommended "production standard": 150–200
// virtual nodes per physical node keep the load spread to a few percent (the
// chapter README has the measured table).
const DefaultVirtualNodes = 200

// Ring is a consistent hash ring, safe for concurrent use: any number of
// goroutines may call GetNode/GetN while others call AddNode/RemoveNode.
// The zero value is not usable; call New.
type Ring struct {
	hash   Hash
	vnodes int

	mu      sync.Mutex     // serialises writers; readers use snap only
	weights map[string]int // physical node -> weight, guarded by mu

	snap atomic.Pointer[snapshot]
}

// snapshot is an immutable view of the ring. hashes is sorted; owners[i] is the
// index in nodes of the physical node that owns point hashes[i]. nodes is sorted
// by name, and points with equal hashes are ordered by owner index, that is by
// node name: the order is a function of the node set alone.
type snapshot struct {
	hashes []uint32
	owners []int32
	nodes  []string
}

// Option configures a Ring.
type Option func(*Ring)

// WithHash replaces the default CRC32 with another Hash (XXHash, FNV1a or your
// own). Every ring that must agree on key placement has to use the same Hash.
func WithHash(h Hash) Option {
	return func(r *Ring) {
		if h != nil {
			r.hash = h
		}
	}
}

// New returns an empty ring that places virtualNodes points per unit of weight
// for every physical node. It panics if virtualNodes < 1.
func New(virtualNodes int, opts ...Option) *Ring {
	if virtualNodes < 1 {
		panic(fmt.Sprintf("ring: virtualNodes must be >= 1, got %d", virtualNodes))
	}
	r := &Ring{hash: CRC32, vnodes: virtualNodes, weights: make(map[string]int)}
	for _, o := range opts {
		o(r)
	}
	r.snap.Store(&snapshot{})
	return r
}

// AddNode adds node with weight 1. Adding a node that is already on the ring
// with weight 1 changes nothing.
func (r *Ring) AddNode(node string) { r.AddWeightedNode(node, 1) }

// AddWeightedNode adds node with virtualNodes·weight points ("node#0",
// "node#1", ...), so it receives about weight times the keys of a weight-1
// node. Calling it again for a node already on the ring sets the new weight:
// points "node#i" for the lower weight are kept, so raising the weight only
// moves keys to node and lowering it only moves keys away from it. A weight
// below 1 removes node.
func (r *Ring) AddWeightedNode(node string, weight int) {
	if weight < 1 {
		r.RemoveNode(node)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.weights[node] == weight {
		return
	}
	pts := make([]uint32, r.vnodes*weight)
	buf := make([]byte, 0, len(node)+12)
	for i := range pts {
		buf = strconv.AppendInt(append(append(buf[:0], node...), '#'), int64(i), 10)
		pts[i] = r.hash(stringOf(buf))
	}
	slices.Sort(pts)
	r.weights[node] = weight
	r.replace(node, pts)
}

// RemoveNode takes node and all its points off the ring. Removing a node that
// is not on the ring changes nothing. Only the keys node owned move, each to the
// next point clockwise.
func (r *Ring) RemoveNode(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.weights[node]; !ok {
		return
	}
	delete(r.weights, node)
	r.replace(node, nil)
}

// replace publishes a snapshot in which node owns exactly pts (sorted; none
// removes it). Called with mu held. It merges pts into the current points in
// one linear pass, ordering equal hashes by node name, so the result is the
// same as sorting every point of the node set from scratch: that is what makes
// collisions resolve the same way whatever order nodes were added in.
func (r *Ring) replace(node string, pts []uint32) {
	old := r.snap.Load()
	oldPos, had := slices.BinarySearch(old.nodes, node)

	nodes := slices.Clone(old.nodes)
	switch {
	case had && len(pts) == 0:
		nodes = slices.Delete(nodes, oldPos, oldPos+1)
	case !had && len(pts) > 0:
		nodes = slices.Insert(nodes, oldPos, node)
	}
	// Old owner index -> new index. Name order is kept, so merged points stay
	// ordered by (hash, owner).
	remap := make([]int32, len(old.nodes))
	for i := range remap {
		remap[i] = int32(i)
		if !had && len(pts) > 0 && i >= oldPos {
			remap[i]++
		} else if had && len(pts) == 0 && i > oldPos {
			remap[i]--
		}
	}
	self := int32(oldPos) // node's index in nodes when it has points

	n := len(old.hashes) + len(pts)
	s := &snapshot{hashes: make([]uint32, 0, n), owners: make([]int32, 0, n), nodes: nodes}
	i, j := 0, 0
	for i < len(old.hashes) || j < len(pts) {
		if i < len(old.hashes) && had && old.owners[i] == int32(oldPos) {
			i++ // node's previous points are replaced by pts
			continue
		}
		if i < len(old.hashes) {
			h, o := old.hashes[i], remap[old.owners[i]]
			if j == len(pts) || h < pts[j] || (h == pts[j] && o < self) {
				s.hashes, s.owners = append(s.hashes, h), append(s.owners, o)
				i++
				continue
			}
		}
		s.hashes, s.owners = append(s.hashes, pts[j]), append(s.owners, self)
		j++
	}
	r.snap.Store(s)
}

// search returns the index of the first point at or after h, wrapping to 0 past
// the last point. The snapshot must not be empty. Written out rather than
// sort.Search so that no closure is called per probe.
func (s *snapshot) search(h uint32) int {
	lo, hi := 0, len(s.hashes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.hashes[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(s.hashes) {
		return 0
	}
	return lo
}

// GetNode returns the physical node that owns key: the owner of the first point
// clockwise from hash(key). It returns "" when the ring is empty. It does not
// allocate.
func (r *Ring) GetNode(key string) string {
	s := r.snap.Load()
	if len(s.hashes) == 0 {
		return ""
	}
	return s.nodes[s.owners[s.search(r.hash(key))]]
}

// GetN returns up to n distinct physical nodes for key, in ring order starting
// with GetNode(key): the replica set for a replication factor of n (Cassandra's
// RF=3 walks the ring the same way). When n exceeds the number of physical
// nodes it returns all of them; n < 1 or an empty ring returns nil.
func (r *Ring) GetN(key string, n int) []string {
	s := r.snap.Load()
	if n < 1 || len(s.hashes) == 0 {
		return nil
	}
	n = min(n, len(s.nodes))
	out := make([]string, 0, n)
	seen := make([]bool, len(s.nodes))
	for i, start := 0, s.search(r.hash(key)); i < len(s.hashes) && len(out) < n; i++ {
		j := start + i
		if j >= len(s.hashes) {
			j -= len(s.hashes)
		}
		if o := s.owners[j]; !seen[o] {
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
func (r *Ring) Points() int { return len(r.snap.Load().hashes) }

// Weight returns node's weight, or 0 if node is not on the ring.
func (r *Ring) Weight(node string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.weights[node]
}
