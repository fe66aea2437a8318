// Package balancer holds the load-balancing algorithms and the backend pool
// that the L4 proxy (package l4) and the L7 proxy (package l7) share: round
// robin, smooth weighted round robin (nginx), least connections, power of two
// choices, and a consistent-hash ring for affinity; plus active health checks
// that eject and readmit backends.
//
// The article lists the algorithms with a complexity each; this package
// implements them and benchmarks the pick (BenchmarkPick). Two of the
// article's labels do not hold for the usual implementations: nginx's smooth
// weighted round robin is O(N) per pick (it visits every peer), and least
// connections is O(N) as a scan (O(log N) needs a heap or a tree, as HAProxy
// keeps). Power of two choices is O(1) and, unlike least connections, never
// sends every new request to the same backend.
//
// A Backend counts its requests (or connections) in flight; the proxies call
// Begin and Done around each one, and the load-aware algorithms read the count.
package balancer

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Backend is one upstream server. Its counters are updated by the proxies and
// read by the algorithms without locks.
type Backend struct {
	Name   string // unique in its pool; the sticky cookie's value
	Addr   string // host:port
	Weight int    // relative capacity, ≥ 1

	inflight atomic.Int64
	down     atomic.Bool // the health checker's verdict
	ejected  atomic.Bool // a proxy's passive ejection, lifted by a timer, a passing probe or a served request
	ejection uint64      // counts ejections, so a timer lifts only its own; under Pool.mu
	id       int         // position in its pool, for algorithms that keep per-backend state
}

// NewBackend returns a healthy backend with no request in flight.
func NewBackend(name, addr string, weight int) *Backend {
	return &Backend{Name: name, Addr: addr, Weight: weight}
}

// Inflight is the number of requests (L7) or connections (L4) the backend is
// serving now: what least connections and P2C compare.
func (b *Backend) Inflight() int64 { return b.inflight.Load() }

// Begin counts one more request in flight; call Done when it ends.
func (b *Backend) Begin() { b.inflight.Add(1) }

// Done ends a request counted by Begin.
func (b *Backend) Done() { b.inflight.Add(-1) }

// Healthy reports whether the backend takes new requests: the health
// checker has not ejected it and no passive ejection is in force.
func (b *Backend) Healthy() bool { return !b.down.Load() && !b.ejected.Load() }

// String is the backend's name, as logs and error messages show it.
func (b *Backend) String() string { return b.Name }

// Algorithm chooses a backend for one request.
type Algorithm interface {
	// Pick returns one of candidates, which is never empty, holds only
	// backends of the algorithm's pool that may take the request, and keeps
	// the pool's order. key is the request's affinity key (a header, a client
	// IP); algorithms that do not hash ignore it. Pick is called concurrently.
	Pick(candidates []*Backend, key string) *Backend
}

// ErrNoBackend means every backend is ejected or was already tried for this
// request: the proxies answer 503.
var ErrNoBackend = errors.New("balancer: no healthy backend")

// Pool is a fixed set of backends, the health of each, and the algorithm that
// picks among the healthy ones.
type Pool struct {
	algo     Algorithm
	backends []*Backend

	mu      sync.Mutex                 // serialises health changes
	healthy atomic.Pointer[[]*Backend] // rebuilt on each change, read lock-free by Pick
	ejected int                        // backends passively ejected now; under mu
}

// MaxEjectionPercent caps passive ejection as Envoy's outlier detection
// does (max_ejection_percent, its default): at most this share of a pool's
// backends is ejected at once, and at least one. A refused connection is a
// guess about a backend's health; a pool that ejected every backend on such
// guesses would refuse every request (a rolling restart did exactly that).
const MaxEjectionPercent = 10

// NewPool checks the backends (names unique and non-empty, weights ≥ 1) and
// returns a pool with all of them healthy. A backend belongs to one pool.
func NewPool(algo Algorithm, backends ...*Backend) (*Pool, error) {
	if algo == nil {
		return nil, errors.New("balancer: nil algorithm")
	}
	if len(backends) == 0 {
		return nil, errors.New("balancer: no backends")
	}
	seen := map[string]bool{}
	for _, b := range backends {
		switch {
		case b.Name == "":
			return nil, fmt.Errorf("balancer: backend %s has no name", b.Addr)
		case seen[b.Name]:
			return nil, fmt.Errorf("balancer: backend name %q used twice", b.Name)
		case b.Weight < 1:
			return nil, fmt.Errorf("balancer: backend %s has weight %d, want ≥ 1", b.Name, b.Weight)
		}
		seen[b.Name] = true
	}
	for i, b := range backends {
		b.id = i
	}
	p := &Pool{algo: algo, backends: backends}
	p.rebuild()
	return p, nil
}

// Backends returns every backend, healthy or not, in the order given.
func (p *Pool) Backends() []*Backend { return p.backends }

// Backend returns the backend called name, if the pool has it.
func (p *Pool) Backend(name string) (*Backend, bool) {
	for _, b := range p.backends {
		if b.Name == name {
			return b, true
		}
	}
	return nil, false
}

// Healthy returns the backends that take requests now. The slice is shared:
// do not modify it.
func (p *Pool) Healthy() []*Backend { return *p.healthy.Load() }

// Pick asks the algorithm for a healthy backend other than those in tried
// (the backends a retry must avoid). When none is left it picks among the
// passively ejected backends that the health checker has not ruled out
// (Envoy's panic routing): an ejection is a guess from one failed
// connection, and a backend back from a restart serves better than a 503.
// It returns ErrNoBackend when no backend is left at all.
func (p *Pool) Pick(key string, tried ...*Backend) (*Backend, error) {
	c := p.Healthy()
	if len(tried) > 0 {
		c = without(c, tried)
	}
	if len(c) == 0 {
		c = p.ejectedUp(tried)
	}
	if len(c) == 0 {
		return nil, ErrNoBackend
	}
	return p.algo.Pick(c, key), nil
}

// ejectedUp returns the passively ejected backends the checker has not
// marked down, minus tried.
func (p *Pool) ejectedUp(tried []*Backend) []*Backend {
	var c []*Backend
	for _, b := range p.backends {
		if b.ejected.Load() && !b.down.Load() {
			c = append(c, b)
		}
	}
	return without(c, tried)
}

// SetHealthy records the health checker's verdict on b: ejected (false) or
// readmitted (true). It reports whether the verdict changed. A passive
// ejection (Eject) is separate: b takes requests only when neither holds.
func (p *Pool) SetHealthy(b *Backend, healthy bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.down.Load() == !healthy {
		return false
	}
	b.down.Store(!healthy)
	p.rebuild()
	return true
}

// Eject takes b out for d after a proxy saw it refuse a connection (passive
// ejection, Envoy's outlier detection): the next requests go elsewhere at
// once instead of waiting for the health checker's verdict. It comes back
// after d even when no checker runs (a refusal under overload is not death),
// or earlier when a health probe passes or a request it is picked for
// succeeds (Readmit). Eject reports false, and ejects nothing, if b is
// already ejected, d ≤ 0, MaxEjectionPercent of the pool is ejected already,
// or b is the last backend taking requests.
func (p *Pool) Eject(b *Backend, d time.Duration) bool {
	if d <= 0 || b.ejected.Load() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	limit := max(1, len(p.backends)*MaxEjectionPercent/100)
	switch {
	case b.ejected.Load(), p.ejected >= limit:
		return false
	case len(*p.healthy.Load()) == 1 && b.Healthy(): // the last one
		return false
	}
	b.ejected.Store(true)
	b.ejection++
	p.ejected++
	p.rebuild()
	ejection := b.ejection
	time.AfterFunc(d, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if b.ejection == ejection { // not lifted and ejected again since
			p.readmit(b)
		}
	})
	return true
}

// Readmit lifts b's passive ejection now, if it has one: a health probe
// passed, or a request sent to it anyway (Pick's last resort) succeeded. It
// reports whether b was ejected. The checker's verdict is not touched.
func (p *Pool) Readmit(b *Backend) bool {
	if !b.ejected.Load() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readmit(b)
}

// generation returns b's ejection counter, which changes at every ejection
// and readmission: a probe records it when it is sent.
func (p *Pool) generation(b *Backend) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return b.ejection
}

// readmitSince lifts b's passive ejection if it is the one in force at
// generation gen: a probe sent before an ejection says nothing about the
// failure that caused it.
func (p *Pool) readmitSince(b *Backend, gen uint64) {
	if !b.ejected.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.ejection == gen {
		p.readmit(b)
	}
}

// readmit lifts b's passive ejection; callers hold mu.
func (p *Pool) readmit(b *Backend) bool {
	if !b.ejected.Load() {
		return false
	}
	b.ejected.Store(false)
	b.ejection++
	p.ejected--
	p.rebuild()
	return true
}

// Refused reports whether a connect error is the backend's fault and worth
// a passive ejection: refused, reset, unreachable, or timed out. Local
// failures (out of ephemeral ports, out of file descriptors) are not.
func Refused(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func (p *Pool) rebuild() {
	h := make([]*Backend, 0, len(p.backends))
	for _, b := range p.backends {
		if b.Healthy() {
			h = append(h, b)
		}
	}
	p.healthy.Store(&h)
}

func without(c, tried []*Backend) []*Backend {
	out := make([]*Backend, 0, len(c))
	for _, b := range c {
		skip := false
		for _, t := range tried {
			skip = skip || b == t
		}
		if !skip {
			out = append(out, b)
		}
	}
	return out
}
