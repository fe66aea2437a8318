package tiered

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// LocalOptions configures a Local cache. Zero values mean the defaults; NewLocal
// rejects values out of range instead of silently clamping them.
type LocalOptions struct {
	// MaxEntries bounds the cache. The bound is split over power-of-two shards, so
	// the real ceiling is MaxEntries rounded up to a multiple of the shard count
	// (at most MaxEntries + 255). Default 10,000; negative is an error.
	MaxEntries int
	// TTL is the longest an entry lives. Default 1 s: the article's local tier uses
	// 1–5 s, because it is also the worst-case staleness when an invalidation is lost.
	// At most MaxLocalTTL; negative is an error.
	TTL time.Duration
	// Jitter is the fraction of TTL removed at random from each entry's lifetime
	// (TTL·(1 − Jitter·U), U uniform in [0,1)), so entries filled together across
	// pods do not expire together and stampede L2 in sync. It must lie in [0, 1);
	// 0 means the default 0.1. Jitter only shortens lifetimes, so TTL stays a
	// staleness bound.
	Jitter float64
	// NoJitter gives every entry exactly TTL (tests, or a single instance).
	NoJitter bool
	// ExactClock reads the monotonic clock on every Get. By default a Local
	// hit 256 times or more within one ClockResolution reads a
	// coarse clock refreshed every ClockResolution, and the monotonic clock
	// only when the entry (or a Cache's invalidation lease) ends within
	// ClockWindow of the coarse time. That halves the cost of most hits on a
	// hot Local, and changes no expiry unless the coarse clock falls
	// ClockWindow behind: its goroutine starved that long, or the process
	// stopped and resumed (see ClockResolution). Set it where TTLs and the
	// invalidation bound must hold even across a stopped process.
	ExactClock bool
	// Now and Rand replace time.Now and math/rand/v2.Float64 in tests.
	Now  func() time.Time
	Rand func() float64
}

// MaxLocalTTL is the longest TTL NewLocal accepts. An in-process tier that keeps
// entries for more than a day is no longer a short-lived L1, and the bound keeps
// expiry arithmetic (nanoseconds in an int64) far from overflow: with TTL =
// math.MaxInt64 every entry would be born expired.
const MaxLocalTTL = 24 * time.Hour

// ErrLocalOptions is wrapped by every error NewLocal returns.
var ErrLocalOptions = errors.New("tiered: invalid LocalOptions")

func (o *LocalOptions) validate() error {
	switch {
	case o.MaxEntries < 0:
		return fmt.Errorf("%w: MaxEntries %d is negative", ErrLocalOptions, o.MaxEntries)
	case o.TTL < 0 || o.TTL > MaxLocalTTL:
		return fmt.Errorf("%w: TTL %v outside (0, %v] (0 means the default 1s)", ErrLocalOptions, o.TTL, MaxLocalTTL)
	case !(o.Jitter >= 0 && o.Jitter < 1): // also rejects NaN
		return fmt.Errorf("%w: Jitter %v outside [0, 1) (0 means the default 0.1; set NoJitter for none)", ErrLocalOptions, o.Jitter)
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = 10_000
	}
	if o.TTL == 0 {
		o.TTL = time.Second
	}
	switch {
	case o.NoJitter:
		o.Jitter = 0
	case o.Jitter == 0:
		o.Jitter = 0.1
	}
	return nil
}

// Local is a bounded, sharded in-process cache with per-entry TTL: the L1 tier.
//
// A hit costs a hash, a shard read-lock, a map lookup and a clock read: on a
// hot Local an atomic load of the coarse clock (ClockResolution; the monotonic
// clock near an expiry), else the monotonic clock. It allocates nothing.
// When a shard is full, Set evicts by sampling five entries (Go randomises map
// iteration order) and removing an expired one, else one not read since the last
// sweep (a second-chance bit), else the first sampled: the approach Redis takes with
// maxmemory-samples, traded against exact LRU bookkeeping on every hit.
type Local[V any] struct {
	shards []shard[V]
	mask   uint64
	seed   maphash.Seed
	ttl    time.Duration
	jitter float64
	now    func() time.Time
	rand   func() float64
	coarse bool // hits read clock first: no test clock, no ExactClock
	clock  coarseClock
	// servable is the time (nowNano) until which entries may be served at all.
	// A standalone Local never lowers it; a Cache moves it forward each time its
	// invalidation subscription proves healthy, and entries stop being served
	// when it lapses (see Options.InvalidationBound).
	servable atomic.Int64
}

type shard[V any] struct {
	mu  sync.RWMutex
	m   map[string]*entry[V]
	cap int
	_   [64]byte // keep neighbouring shards' locks off one cache line
}

// entry is immutable once published, except ref; a Set replaces the pointer.
type entry[V any] struct {
	v   V
	exp int64 // nanoseconds since epoch (monotonic)
	ref atomic.Bool
}

const evictionSamples = 5

// NewLocal returns an empty Local cache, or an error wrapping ErrLocalOptions when
// an option is out of range.
func NewLocal[V any](o LocalOptions) (*Local[V], error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	// Aim for ≥16 entries per shard so small caches do not become 256 tiny ones.
	n := 1
	if want := (o.MaxEntries + 15) / 16; want > 1 {
		n = 1 << bits.Len(uint(want-1))
	}
	n = min(n, 256)
	per := (o.MaxEntries + n - 1) / n
	c := &Local[V]{
		shards: make([]shard[V], n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		ttl:    o.TTL,
		jitter: o.Jitter,
		now:    o.Now,
		rand:   o.Rand,
		coarse: !o.ExactClock && o.Now == nil,
	}
	c.servable.Store(math.MaxInt64)
	c.clock.now.Store(clockStopped)
	for i := range c.shards {
		c.shards[i].m = make(map[string]*entry[V], per)
		c.shards[i].cap = per
	}
	return c, nil
}

// Get returns the value for key if present and not expired. It does not allocate.
func (c *Local[V]) Get(key string) (V, bool) {
	s := c.shard(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil {
		var zero V
		return zero, false
	}
	if !c.live(e.exp) {
		var zero V
		return zero, false
	}
	if !e.ref.Load() { // read before write: a hot entry's line is not dirtied on every hit
		e.ref.Store(true)
	}
	return e.v, true
}

// Set stores v under key with the cache's TTL minus jitter.
func (c *Local[V]) Set(key string, v V) { c.setIf(key, v, 0, nil) }

// setIf stores v unless ok returns false; ok runs under the shard lock, so a Delete
// of key cannot slip between the check and the store (see Cache's generation check).
// maxLife > 0 caps the entry's lifetime (a Cache passes the L2 entry's remaining TTL,
// so an L1 copy never outlives its source); maxLife < 0 stores nothing.
func (c *Local[V]) setIf(key string, v V, maxLife time.Duration, ok func() bool) {
	if maxLife < 0 {
		return
	}
	now := c.nowNano()
	life := float64(c.ttl)
	if c.jitter > 0 {
		life *= 1 - c.jitter*c.random()
	}
	if maxLife > 0 {
		life = min(life, float64(maxLife))
	}
	e := &entry[V]{v: v, exp: now + int64(life)}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok != nil && !ok() {
		return
	}
	if _, exists := s.m[key]; !exists && len(s.m) >= s.cap {
		s.evictLocked(now)
	}
	s.m[key] = e
}

// Delete removes key.
func (c *Local[V]) Delete(key string) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

// Close tells the coarse clock's goroutine, if one runs, to stop now rather
// than within 100 ms (clockRunTicks ticks) of its start. Only code that must
// have no goroutine left, such as a test checking for leaks, needs it. The
// Local stays usable: a later burst of hits starts the clock again.
func (c *Local[V]) Close() { c.clock.stop() }

// Clear removes every entry.
func (c *Local[V]) Clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}

// Len returns the number of entries, expired ones not yet evicted included.
func (c *Local[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Capacity returns the real entry bound (MaxEntries rounded up to the shard count).
func (c *Local[V]) Capacity() int { return len(c.shards) * c.shards[0].cap }

func (s *shard[V]) evictLocked(now int64) {
	var first string
	n := 0
	for k, e := range s.m {
		if e.exp <= now || !e.ref.Load() {
			delete(s.m, k) // expired, or not read since the last sweep
			return
		}
		e.ref.Store(false) // second chance: evicted next time unless read again
		if n == 0 {
			first = k
		}
		if n++; n == evictionSamples {
			break
		}
	}
	if n > 0 {
		delete(s.m, first) // every sample was recently read: fall back to a random one
	}
}

func (c *Local[V]) shard(key string) *shard[V] {
	return &c.shards[maphash.String(c.seed, key)&c.mask]
}

// epoch anchors expiry times to the monotonic clock: time.Since(epoch) reads only the
// monotonic clock, while time.Now also reads the wall clock, which doubles the cost of
// a clock read on machines where each is a slow vDSO call.
var epoch = time.Now()

// nowNano is the time expiries are set with and checked against: the test
// clock if one was given, else the monotonic clock.
func (c *Local[V]) nowNano() int64 {
	if c.now != nil {
		return int64(c.now().Sub(epoch))
	}
	return monotonicNow()
}

// live reports whether an entry expiring at exp may be served now: before exp
// and before the end of the invalidation lease. On the coarse clock, which is
// never ahead of the monotonic one, a coarse time past either end is final; a
// coarse time more than ClockWindow before both is taken as is; in between,
// the monotonic clock decides.
func (c *Local[V]) live(exp int64) bool {
	end := min(exp, c.servable.Load())
	if !c.coarse {
		return c.nowNano() < end
	}
	now := c.clock.read()
	if now >= end {
		return false
	}
	return end-now > int64(ClockWindow) || monotonicNow() < end
}

func (c *Local[V]) random() float64 {
	if c.rand != nil {
		return c.rand()
	}
	return rand.Float64()
}
