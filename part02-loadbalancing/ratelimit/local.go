// Package ratelimit is the article's per-client token bucket done right,
// its Redis fixed-window cousin, and the HTTP middleware in front of both.
//
// What the article's PerClientRateLimiter gets wrong, and what this package
// does instead (each has a test):
//   - lastSeen is written with no lock held (right after RUnlock) while other
//     requests write it and the cleanup reads it: a data race. Here it is an
//     atomic, stored while the read lock is held, so the sweeper, which
//     deletes under the write lock and re-checks, cannot remove an entry a
//     request has just used.
//   - After a miss it takes the write lock and creates a limiter without
//     looking again, so two first requests of one client race and the second
//     replaces the first's bucket: that client gets two bursts. Here the
//     lookup is repeated under the write lock (double-checked creation).
//   - Memory is bounded only by the TTL: a flood of new keys (spoofed
//     X-Forwarded-For, an IPv6 /64) grows the map without limit. Here
//     MaxClients caps it; at the cap the least recently seen of a few
//     sampled clients is evicted (Redis's approximated LRU).
//   - The cleanup goroutine never stops, and a TTL under 2 ns panics it
//     (time.NewTicker). Here Close stops it, and New rejects a TTL under
//     1 ms or shorter than the time the bucket takes to refill, the one TTL
//     below which eviction would hand a busy client a fresh burst.
//   - Retry-After is always 1 and X-RateLimit-Limit is the rate rounded to
//     an integer (0.5/s prints "0"). Here Retry-After is the time until the
//     next token, and the limit is the bucket's capacity.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Decision is a limiter's answer for one request.
type Decision struct {
	Allowed    bool
	Limit      int64         // the most requests a client may send at once (X-RateLimit-Limit)
	Remaining  int64         // requests left right now (X-RateLimit-Remaining)
	RetryAfter time.Duration // when denied: until a request would pass
}

// Limiter decides whether the client called key may make one more request.
// An error means the limiter could not decide (its store is down); the
// middleware then applies its fail-open or fail-closed policy.
type Limiter interface {
	Allow(ctx context.Context, key string) (Decision, error)
}

// PerClient is an in-memory token bucket per client: each refills at Rate
// tokens per second up to Burst, a request takes one. Safe for concurrent
// use; Close stops its sweeper.
type PerClient struct {
	rate  rate.Limit
	burst int
	ttl   time.Duration
	max   int
	now   func() time.Time

	mu      sync.RWMutex
	clients map[string]*client

	evicted atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type client struct {
	lim      *rate.Limiter
	lastSeen atomic.Int64 // UnixNano of the last request
}

// PerClientConfig sizes a PerClient.
type PerClientConfig struct {
	Rate  rate.Limit // tokens per second, > 0
	Burst int        // bucket capacity, ≥ 1
	// TTL forgets a client idle this long. It must be at least Burst/Rate,
	// the time an empty bucket takes to refill: a client idle that long has
	// a full bucket, so forgetting it changes nothing; and at least 1 ms.
	// 0: 2 × Burst/Rate, at least a minute.
	TTL time.Duration
	// MaxClients caps the clients remembered at once (0: 1,000,000).
	MaxClients int
	// Now is the limiter's clock (nil: time.Now), for demos and replays
	// that must not depend on how fast the machine runs.
	Now func() time.Time
}

// NewPerClient returns a limiter and starts its sweeper, which forgets idle
// clients every TTL/2.
func NewPerClient(c PerClientConfig) (*PerClient, error) {
	if !(c.Rate > 0) || c.Rate >= rate.Inf || math.IsInf(float64(c.Rate), 0) {
		return nil, fmt.Errorf("ratelimit: rate %v must be a positive number of tokens per second", float64(c.Rate))
	}
	if c.Burst < 1 {
		return nil, fmt.Errorf("ratelimit: burst %d must be at least 1", c.Burst)
	}
	refillNS := float64(c.Burst) / float64(c.Rate) * float64(time.Second)
	if refillNS > math.MaxInt64/2 { // the default TTL is twice it
		return nil, fmt.Errorf("ratelimit: a burst of %d at %v tokens per second takes longer to refill than a time.Duration holds", c.Burst, float64(c.Rate))
	}
	refill := time.Duration(refillNS)
	if c.TTL == 0 {
		c.TTL = max(2*refill, time.Minute)
	}
	if c.TTL < time.Millisecond { // the sweeper runs every TTL/2; time.NewTicker panics at 0
		return nil, fmt.Errorf("ratelimit: TTL %v is under 1ms (the sweeper runs every TTL/2)", c.TTL)
	}
	if c.TTL < refill {
		return nil, fmt.Errorf("ratelimit: TTL %v is shorter than the %v a bucket takes to refill; an evicted client would get a fresh burst", c.TTL, refill)
	}
	if c.MaxClients == 0 {
		c.MaxClients = 1_000_000
	}
	if c.MaxClients < 1 {
		return nil, fmt.Errorf("ratelimit: MaxClients %d must be at least 1", c.MaxClients)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	l := &PerClient{
		rate: c.Rate, burst: c.Burst, ttl: c.TTL, max: c.MaxClients, now: c.Now,
		clients: map[string]*client{},
		stop:    make(chan struct{}), done: make(chan struct{}),
	}
	go l.sweepLoop()
	return l, nil
}

// Close stops the sweeper and waits for it. Allow keeps working.
func (l *PerClient) Close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

// Len is the number of clients remembered.
func (l *PerClient) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.clients)
}

// Evicted counts clients forgotten because the map was full.
func (l *PerClient) Evicted() int64 { return l.evicted.Load() }

// Allow takes a token from key's bucket if it has one. It never fails.
func (l *PerClient) Allow(_ context.Context, key string) (Decision, error) {
	now := l.now()
	lim := l.limiter(key, now)
	d := Decision{Limit: int64(l.burst)}
	if !lim.AllowN(now, 1) { // a denied request takes no token
		d.RetryAfter = time.Duration((1 - lim.TokensAt(now)) / float64(l.rate) * float64(time.Second))
		return d, nil
	}
	d.Allowed = true
	d.Remaining = int64(math.Max(0, math.Floor(lim.TokensAt(now))))
	return d, nil
}

// limiter returns key's bucket, creating it once however many requests of a
// new client arrive together.
func (l *PerClient) limiter(key string, now time.Time) *rate.Limiter {
	l.mu.RLock()
	c, ok := l.clients[key]
	if ok {
		c.lastSeen.Store(now.UnixNano()) // under the read lock: the sweeper cannot be between its check and its delete
	}
	l.mu.RUnlock()
	if ok {
		return c.lim
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.clients[key]; ok { // created by a concurrent first request meanwhile
		c.lastSeen.Store(now.UnixNano())
		return c.lim
	}
	if len(l.clients) >= l.max {
		l.evictOne()
	}
	c = &client{lim: rate.NewLimiter(l.rate, l.burst)}
	c.lastSeen.Store(now.UnixNano())
	l.clients[key] = c
	return c.lim
}

// evictOne forgets the least recently seen of a few clients. Go's map
// iteration starts at a random place, so this samples without a list to
// maintain on every request. Called with the write lock held.
func (l *PerClient) evictOne() {
	const samples = 5
	var oldest string
	var oldestSeen int64 = math.MaxInt64
	n := 0
	for k, c := range l.clients {
		if s := c.lastSeen.Load(); s < oldestSeen {
			oldest, oldestSeen = k, s
		}
		if n++; n == samples {
			break
		}
	}
	delete(l.clients, oldest)
	l.evicted.Add(1)
}

func (l *PerClient) sweepLoop() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 2)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Sweep(l.now())
		}
	}
}

// Sweep forgets clients not seen for TTL before now. It finds them under
// the read lock, so requests keep flowing, then deletes each under the
// write lock only if it is still idle: a request may have used it between.
func (l *PerClient) Sweep(now time.Time) int {
	cutoff := now.Add(-l.ttl).UnixNano()
	var idle []string
	l.mu.RLock()
	for k, c := range l.clients {
		if c.lastSeen.Load() < cutoff {
			idle = append(idle, k)
		}
	}
	l.mu.RUnlock()
	if len(idle) == 0 {
		return 0
	}
	n := 0
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range idle {
		if c, ok := l.clients[k]; ok && c.lastSeen.Load() < cutoff {
			delete(l.clients, k)
			n++
		}
	}
	return n
}
