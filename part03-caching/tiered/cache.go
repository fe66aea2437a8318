package tiered

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part03-caching/stampede"
)

// voidLease is the invalidation lease of an instance whose subscription is
// not confirmed: before every time, including the negative ones of a
// testing/synctest bubble (its fake clock starts in 2000, before epoch).
const voidLease = math.MinInt64

// Options configures a Cache.
type Options[V any] struct {
	// Redis is the L2 and carries the invalidation channel.
	Redis redis.UniversalClient
	// Prefix namespaces L2 keys (Prefix+key) and the channel (Prefix+"l1-invalidate").
	// Instances that share data must share the prefix.
	Prefix string
	// Load fetches a value from the system of record on an L2 miss. It is fixed at
	// construction (read-through) so that Get takes no closure: a closure passed per
	// call would escape to the heap on every call, hits included.
	Load func(ctx context.Context, key string) (V, error)
	// L1 configures the local tier.
	L1 LocalOptions
	// L2TTL is the Redis TTL of filled entries. Default 10 min. An L1 copy never
	// outlives the L2 entry it was read from: its lifetime is capped at the entry's
	// remaining TTL (PTTL, read in the same round trip as the value).
	L2TTL time.Duration
	// Timeout bounds one fill (L2 read + load) and each caller's wait for it. Default 5 s.
	Timeout time.Duration
	// InvalidationBound is the longest this instance's L1 can serve a value after a
	// write whose invalidation it has not applied: pub/sub is at-most-once, and a
	// subscription can stop delivering without its connection closing (a network
	// black hole, a stalled server), which go-redis alone does not notice. The
	// instance pings Redis over its subscription every InvalidationBound/4; a pong
	// proves every invalidation published before that ping has been applied, and L1
	// serves entries only until the ping's time plus InvalidationBound. A write that
	// returned at t is therefore seen by every instance by t + InvalidationBound (or
	// when its L1 copy expires, if sooner), whatever happens to the subscription.
	// Default 2 s; at least 10 ms.
	InvalidationBound time.Duration
}

// Stats counts what a Cache did. L1 hits are not counted: a shared counter on the
// hit path would cost more than the hit.
type Stats struct {
	L1Misses      int64 // Gets that went past L1 (they share fills per key)
	L2Hits        int64 // fills served by Redis
	L2Misses      int64 // fills that called Load
	L2Errors      int64 // Redis reads or writes that failed during a fill
	Invalidations int64 // invalidation messages received (own writes included)
	Resubscribes  int64 // subscriptions re-established after a disconnect, each of which cleared L1
	PingTimeouts  int64 // pings not answered within InvalidationBound (the instance then reconnects)
}

// Cache is an L1 + L2 read-through cache with cross-instance L1 invalidation.
// Values returned by Get are shared with other callers and must not be modified.
type Cache[V any] struct {
	l1      *Local[V]
	rdb     redis.UniversalClient
	prefix  string
	channel string
	load    func(context.Context, string) (V, error)
	l2TTL   time.Duration
	timeout time.Duration
	bound   time.Duration
	group   stampede.Group[V]

	// gen counts local invalidations. A fill records it before reading L2 and stores
	// into L1 only if it is unchanged, under the L1 shard lock: otherwise a fill that
	// read the old value just before another instance's write could put that old
	// value into L1 after the invalidation for it had already been applied.
	gen atomic.Uint64

	l1Misses, l2Hits, l2Misses, l2Errs, invals, resubs, pingTimeouts atomic.Int64

	mu     sync.Mutex // guards ps and closed against Close; the listener owns ps otherwise
	ps     *redis.PubSub
	closed bool
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the listener returns
}

// pingPrefix marks this package's health-check pongs.
const pingPrefix = "tiered-health-"

// New subscribes to the invalidation channel, waits until Redis confirms the
// subscription and answers a first ping (so L1 can serve from the start), and starts
// the goroutine that applies invalidations and keeps checking the subscription.
// Close stops it.
func New[V any](ctx context.Context, o Options[V]) (*Cache[V], error) {
	if o.Redis == nil || o.Load == nil {
		return nil, errors.New("tiered: Options.Redis and Options.Load are required")
	}
	if o.L2TTL <= 0 {
		o.L2TTL = 10 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	switch {
	case o.InvalidationBound == 0:
		o.InvalidationBound = 2 * time.Second
	case o.InvalidationBound < 10*time.Millisecond:
		return nil, fmt.Errorf("tiered: InvalidationBound %v is below 10ms", o.InvalidationBound)
	}
	l1, err := NewLocal[V](o.L1)
	if err != nil {
		return nil, err
	}
	l1.servable.Store(voidLease) // nothing is served until the subscription is confirmed
	c := &Cache[V]{
		l1:      l1,
		rdb:     o.Redis,
		prefix:  o.Prefix,
		channel: o.Prefix + "l1-invalidate",
		load:    o.Load,
		l2TTL:   o.L2TTL,
		timeout: o.Timeout,
		bound:   o.InvalidationBound,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.ps = o.Redis.Subscribe(ctx, c.channel)
	// Receive the subscription confirmation before returning, so a write made right
	// after New cannot be missed by this instance, then prove the path with a ping.
	if _, err := c.ps.Receive(ctx); err != nil {
		_ = c.ps.Close()
		return nil, fmt.Errorf("tiered: subscribe to %s: %w", c.channel, err)
	}
	sent := c.l1.nowNano()
	if err := c.ps.Ping(ctx, pingPrefix+"0"); err != nil {
		_ = c.ps.Close()
		return nil, fmt.Errorf("tiered: ping the subscription: %w", err)
	}
	for confirmed := false; !confirmed; {
		m, err := c.ps.Receive(ctx)
		if err != nil {
			_ = c.ps.Close()
			return nil, fmt.Errorf("tiered: ping the subscription: %w", err)
		}
		switch m := m.(type) {
		case *redis.Message:
			c.apply(m)
		case *redis.Pong:
			confirmed = m.Payload == pingPrefix+"0"
		}
	}
	c.l1.servable.Store(sent + int64(c.bound))
	go c.listen()
	return c, nil
}

// listen applies invalidations and keeps the subscription's health lease: it pings
// every bound/4, extends how long L1 may serve on each pong, clears L1 when the
// subscription was re-established (messages sent meanwhile are lost), and replaces
// a subscription whose ping went unanswered for a whole bound.
func (c *Cache[V]) listen() {
	defer close(c.done)
	interval := c.bound / 4
	var (
		seq      uint64 // payload of the outstanding ping; the one New sent was 0
		pending  bool   // a ping is outstanding
		sentL1   int64  // its time on the L1 clock (the lease is counted on it)
		sentWall time.Time
		next     = time.Now().Add(interval) // when the next ping is due
		failures int                        // consecutive connection errors
	)
	ps := c.ps
	for {
		wait := time.Until(next)
		if pending {
			wait = time.Until(sentWall.Add(c.bound))
		}
		msg, err := ps.ReceiveTimeout(context.Background(), max(wait, time.Millisecond))
		if c.isClosed() {
			return
		}
		var netErr net.Error
		switch {
		case err == nil:
			failures = 0
			switch m := msg.(type) {
			case *redis.Message:
				c.apply(m)
			case *redis.Subscription:
				if m.Kind == "subscribe" { // go-redis reconnected: messages may have been lost
					c.resubscribed()
					pending, next = false, time.Now()
				}
			case *redis.Pong:
				if pending && m.Payload == pingPrefix+strconv.FormatUint(seq, 10) {
					pending = false
					c.l1.servable.Store(sentL1 + int64(c.bound))
					next = sentWall.Add(interval)
				}
			}
		case errors.As(err, &netErr) && netErr.Timeout():
			// Nothing arrived before the next ping or ping deadline is due.
		default:
			// The connection broke (go-redis has tried one reconnect already) or the
			// dial failed: the pong, if any, is lost. Back off before the next try.
			pending = false
			failures++
			select {
			case <-c.stop:
				return
			case <-time.After(min(time.Duration(failures)*100*time.Millisecond, interval, time.Second)):
			}
		}
		now := time.Now()
		if pending && now.Sub(sentWall) >= c.bound {
			// The subscription has delivered nothing for a whole bound: L1 stopped
			// serving already (the lease lapsed); replace the connection, whose
			// confirmation clears L1 and restarts the pings.
			c.pingTimeouts.Add(1)
			pending = false
			if ps = c.resubscribe(); ps == nil {
				return
			}
			next = now.Add(interval)
			continue
		}
		if !pending && !now.Before(next) {
			seq++
			sentL1, sentWall = c.l1.nowNano(), now
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			err := ps.Ping(ctx, pingPrefix+strconv.FormatUint(seq, 10))
			cancel()
			if err == nil {
				pending = true
			} else {
				next = now.Add(interval / 4)
			}
		}
	}
}

// apply drops an invalidated key from L1.
func (c *Cache[V]) apply(m *redis.Message) {
	c.invals.Add(1)
	c.invalidateLocal(m.Payload)
}

// resubscribed clears L1 after a new subscription: invalidations published while
// the instance was not subscribed are lost, so nothing it holds can be trusted. The
// lease lapses too, until a ping on the new connection comes back.
func (c *Cache[V]) resubscribed() {
	c.l1.servable.Store(voidLease)
	c.gen.Add(1)
	c.l1.Clear()
	c.resubs.Add(1) // after the Clear: whoever sees the count sees an empty L1
}

// resubscribe replaces the subscription (its confirmation arrives through the
// listener like any other). It returns nil if the Cache was closed meanwhile.
func (c *Cache[V]) resubscribe() *redis.PubSub {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	_ = c.ps.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.bound)
	defer cancel()
	c.ps = c.rdb.Subscribe(ctx, c.channel) // on error, the next receive dials again
	return c.ps
}

func (c *Cache[V]) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Get returns the value for key from L1, L2 or Load, in that order. An L1 hit does
// not allocate. A Redis error during a fill is counted and the fill goes on to Load,
// so a Redis outage degrades to "every instance loads once per key", not to errors.
func (c *Cache[V]) Get(ctx context.Context, key string) (V, error) {
	if v, ok := c.l1.Get(key); ok {
		return v, nil
	}
	c.l1Misses.Add(1)
	return c.group.Do(ctx, key, c.timeout, func(ctx context.Context) (V, error) { return c.fill(ctx, key) })
}

func (c *Cache[V]) fill(ctx context.Context, key string) (V, error) {
	// A caller that missed L1 just before the previous fill stored it, and reached the
	// Group just after that flight ended, finds the value here instead of in Redis.
	if v, ok := c.l1.Get(key); ok {
		return v, nil
	}
	gen := c.gen.Load()
	v, left, err := c.readL2(ctx, key)
	switch {
	case err == nil:
		c.l2Hits.Add(1)
	case errors.Is(err, redis.Nil):
		c.l2Misses.Add(1)
		if v, err = c.load(ctx, key); err != nil {
			return v, err
		}
		// NX: a Set from any instance that landed while Load ran is newer than what
		// Load returned; a plain SET would put the old value back into L2 for L2TTL.
		if b, err := json.Marshal(v); err != nil || c.rdb.SetNX(ctx, c.prefix+key, b, c.l2TTL).Err() != nil {
			c.l2Errs.Add(1)
		}
		left = c.l2TTL
	default:
		c.l2Errs.Add(1)
		if v, err = c.load(ctx, key); err != nil {
			return v, err
		}
		left = 0 // no L2 entry to outlive: the L1 TTL alone applies
	}
	c.l1.setIf(key, v, left, func() bool { return c.gen.Load() == gen })
	return v, nil
}

// readL2 returns key's value and its remaining TTL (0: none; negative: it expired
// as it was read), in one round trip.
func (c *Cache[V]) readL2(ctx context.Context, key string) (V, time.Duration, error) {
	var v V
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, c.prefix+key)
		pttl = p.PTTL(ctx, c.prefix+key)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return v, 0, err
	}
	b, err := get.Bytes()
	if err != nil {
		return v, 0, err
	}
	left := pttl.Val()
	switch left {
	case -1: // no TTL: no cap
		left = 0
	case -2: // expired between the two commands: serve it once, keep no copy
		left = -1
	}
	err = json.Unmarshal(b, &v)
	return v, left, err
}

// Set writes v to L2 and tells every instance, this one included, to drop key from
// L1. The write and the publish go in one MULTI, so there is no invalidation without
// a write and no write without an invalidation.
func (c *Cache[V]) Set(ctx context.Context, key string, v V) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(ctx, key, func(p redis.Pipeliner) { p.Set(ctx, c.prefix+key, b, c.l2TTL) })
}

// Delete removes key from L2 and every instance's L1. After a write to the system of
// record, this is the cache-aside "invalidate, don't update" step for a tiered cache.
func (c *Cache[V]) Delete(ctx context.Context, key string) error {
	return c.write(ctx, key, func(p redis.Pipeliner) { p.Del(ctx, c.prefix+key) })
}

func (c *Cache[V]) write(ctx context.Context, key string, op func(redis.Pipeliner)) error {
	// Drop the local copy before and after the write, so this instance reads its own
	// write even before its subscription delivers the message: a fill that read L2
	// while the write was on its way may have stored the old value after the first
	// drop, and the second one (with its generation bump) removes or refuses it.
	c.invalidateLocal(key)
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		op(p)
		p.Publish(ctx, c.channel, key)
		return nil
	})
	c.invalidateLocal(key)
	return err
}

func (c *Cache[V]) invalidateLocal(key string) {
	c.gen.Add(1)
	c.l1.Delete(key)
	c.group.Forget(key) // a fill already in flight must not serve new callers the old value
}

// L1 exposes the local tier (for tests and metrics).
func (c *Cache[V]) L1() *Local[V] { return c.l1 }

// Serving reports whether L1 may serve entries right now: the subscription answered
// a ping less than InvalidationBound ago. While it is false every Get goes to L2.
func (c *Cache[V]) Serving() bool { return c.l1.nowNano() < c.l1.servable.Load() }

// Stats returns the counters.
func (c *Cache[V]) Stats() Stats {
	return Stats{
		L1Misses:      c.l1Misses.Load(),
		L2Hits:        c.l2Hits.Load(),
		L2Misses:      c.l2Misses.Load(),
		L2Errors:      c.l2Errs.Load(),
		Invalidations: c.invals.Load(),
		Resubscribes:  c.resubs.Load(),
		PingTimeouts:  c.pingTimeouts.Load(),
	}
}

// Close unsubscribes, waits for the listening goroutine to end and stops L1's
// clock (Local.Close). It does not close the Redis client, which the caller owns.
func (c *Cache[V]) Close() error {
	defer c.l1.Close()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	close(c.stop)
	err := c.ps.Close()
	c.mu.Unlock()
	<-c.done
	return err
}
