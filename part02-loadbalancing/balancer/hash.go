package balancer

import (
	"cmp"
	"errors"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// ConsistentHash sends every request with the same key to the same backend
// (sticky by user ID header, by client IP at L4), and when a backend leaves
// or returns, moves only the keys it owned: about 1/N of them, where hash mod
// N moves about (N−1)/N (TestConsistentHashMovesAboutOneNth). A key whose
// backend is ejected walks clockwise to the next candidate, as HAProxy's
// "hash-type consistent" does, and comes back when it is readmitted.
//
// IP hash is this with the client IP as key, and it shares the article's
// failure mode: everyone behind one office NAT is one key, so one backend
// (TestIPHashSendsAWholeNATToOneBackend).
type ConsistentHash struct {
	ring     []point
	fallback Algorithm
}

type point struct {
	hash uint64
	b    *Backend
}

// DefaultVirtualNodes is the ring points per unit of weight: enough for a
// ±10% spread over a handful of backends (part 9 of the series measures it).
const DefaultVirtualNodes = 160

// NewConsistentHash builds the ring over every backend of the pool, healthy
// or not, with vnodes points per unit of weight (DefaultVirtualNodes if
// vnodes < 1). Requests without a key go to fallback (round robin if nil).
func NewConsistentHash(backends []*Backend, vnodes int, fallback Algorithm) *ConsistentHash {
	if vnodes < 1 {
		vnodes = DefaultVirtualNodes
	}
	if fallback == nil {
		fallback = new(RoundRobin)
	}
	h := &ConsistentHash{fallback: fallback}
	for _, b := range backends {
		for i := range vnodes * max(b.Weight, 1) {
			h.ring = append(h.ring, point{xxhash.Sum64String(b.Name + "#" + strconv.Itoa(i)), b})
		}
	}
	slices.SortFunc(h.ring, func(x, y point) int {
		switch {
		case x.hash < y.hash:
			return -1
		case x.hash > y.hash:
			return 1
		}
		return 0
	})
	return h
}

// Pick returns the first candidate at or after the key's point on the ring.
func (h *ConsistentHash) Pick(c []*Backend, key string) *Backend {
	if key == "" || len(h.ring) == 0 {
		return h.fallback.Pick(c, key)
	}
	k := xxhash.Sum64String(key)
	i, _ := slices.BinarySearchFunc(h.ring, k, func(p point, k uint64) int {
		switch {
		case p.hash < k:
			return -1
		case p.hash > k:
			return 1
		}
		return 0
	})
	for n := range len(h.ring) {
		b := h.ring[(i+n)%len(h.ring)].b
		if candidate(c, b) {
			return b
		}
	}
	return h.fallback.Pick(c, key) // c holds a backend the ring was not built with
}

// candidate reports whether b is one of c, which is in pool order (Pool.Pick
// keeps it so): a binary search, so a pick is O(log N) even when it must
// step past ejected backends. slices.Contains made every pick O(N): 17 µs
// at 1,024 backends against 0.2 µs at 64.
func candidate(c []*Backend, b *Backend) bool {
	i, ok := slices.BinarySearchFunc(c, b.id, func(x *Backend, id int) int { return cmp.Compare(x.id, id) })
	return ok && c[i] == b
}

// MovedKeys counts how many of the keys user-0 … user-(keys−1) change
// backend when a pool of from equal backends (b1, b2, …) grows to to: with
// the ring (consistent true) or with xxhash mod N, the "hash" of a naive IP
// hash. It is what the demo prints beside the FAQ's "minimizes remapping".
func MovedKeys(keys, from, to int, consistent bool) int {
	mk := func(n int) []*Backend {
		bs := make([]*Backend, n)
		for i := range bs {
			bs[i] = NewBackend("b"+strconv.Itoa(i+1), "", 1)
		}
		return bs
	}
	a, b := mk(from), mk(to)
	ra, rb := NewConsistentHash(a, 0, nil), NewConsistentHash(b, 0, nil)
	pa, errA := NewPool(ra, a...) // a pool puts the backends in order, as Pick wants them
	pb, errB := NewPool(rb, b...)
	if errA != nil || errB != nil {
		panic(errors.Join(errA, errB)) // the names above are unique and the weights 1
	}
	moved := 0
	for i := range keys {
		k := "user-" + strconv.Itoa(i)
		if consistent {
			x, _ := pa.Pick(k)
			y, _ := pb.Pick(k)
			if x.Name != y.Name {
				moved++
			}
		} else if h := xxhash.Sum64String(k); h%uint64(from) != h%uint64(to) {
			moved++
		}
	}
	return moved
}
