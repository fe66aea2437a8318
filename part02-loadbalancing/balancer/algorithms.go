package balancer

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// RoundRobin hands requests to the candidates in turn. O(1), no lock. It
// ignores load, so a slow backend gets its full share and keeps it.
type RoundRobin struct{ next atomic.Uint64 }

// Pick returns the next candidate in turn.
func (r *RoundRobin) Pick(c []*Backend, _ string) *Backend {
	return c[(r.next.Add(1)-1)%uint64(len(c))]
}

// SmoothWeighted is nginx's smooth weighted round robin: every pick adds each
// candidate's weight to its current score, takes the highest score and
// subtracts the total weight from it. Weights 5, 1, 1 give a a b a c a a (the
// heavy backend never gets five in a row). O(N) per pick, under a mutex.
type SmoothWeighted struct {
	mu      sync.Mutex
	current []int // by Backend.id
}

// Pick returns the candidate with the highest current score.
func (s *SmoothWeighted) Pick(c []*Backend, _ string) *Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	var best *Backend
	for _, b := range c {
		if b.id >= len(s.current) {
			s.current = append(s.current, make([]int, b.id+1-len(s.current))...)
		}
		s.current[b.id] += b.Weight
		total += b.Weight
		if best == nil || s.current[b.id] > s.current[best.id] {
			best = b
		}
	}
	s.current[best.id] -= total
	return best
}

// LeastConn picks the candidate with the fewest requests in flight per unit
// of weight. O(N) scan. Ties rotate, so idle backends share the work instead
// of the first one taking all of it. A backend that just joined has nothing
// in flight and takes every new request until it catches up: the article's
// "new node flooded" (TestLeastConnFloodsANewBackend).
type LeastConn struct{ next atomic.Uint64 }

// Pick returns the least loaded candidate.
func (l *LeastConn) Pick(c []*Backend, _ string) *Backend {
	start := int((l.next.Add(1) - 1) % uint64(len(c)))
	best := c[start]
	for i := 1; i < len(c); i++ {
		if b := c[(start+i)%len(c)]; lessLoaded(b, best) {
			best = b
		}
	}
	return best
}

// lessLoaded compares in-flight counts per weight without dividing:
// a/wa < b/wb ⇔ a·wb < b·wa.
func lessLoaded(a, b *Backend) bool {
	return a.Inflight()*int64(b.Weight) < b.Inflight()*int64(a.Weight)
}

// P2C (power of two choices) samples two distinct candidates at random and
// takes the less loaded. O(1). It avoids a slow backend almost as well as
// least connections, with no scan and no herd: two proxies that share no
// state rarely pick the same "least loaded" backend at the same time.
type P2C struct {
	mu  sync.Mutex
	rng *rand.Rand // nil: the runtime's concurrent-safe source
}

// NewP2C returns P2C drawing from rng (for reproducible simulations), or
// from the runtime's random source when rng is nil.
func NewP2C(rng *rand.Rand) *P2C { return &P2C{rng: rng} }

// Pick returns the less loaded of two random candidates.
func (p *P2C) Pick(c []*Backend, _ string) *Backend {
	if len(c) == 1 {
		return c[0]
	}
	i, j := p.two(len(c))
	if lessLoaded(c[j], c[i]) {
		return c[j]
	}
	return c[i]
}

// two returns two distinct indices below n, uniformly.
func (p *P2C) two(n int) (int, int) {
	if p.rng == nil {
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		return i, j
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.rng.IntN(n)
	j := p.rng.IntN(n - 1)
	if j >= i {
		j++
	}
	return i, j
}
