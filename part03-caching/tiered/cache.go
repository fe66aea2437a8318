package tiered

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part03-caching/stampede"
)

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
	// L2TTL is the Redis TTL of filled entries. Default 10 min.
	L2TTL time.Duration
	// Timeout bounds one fill (L2 read + load) and each caller's wait for it. Default 5 s.
	Timeout time.Duration
}

// Stats counts what a Cache did. L1 hits are not counted: a shared counter on the
// hit path would cost more than the hit.
type Stats struct {
	L1Misses      int64 // Gets that went past L1 (they share fills per key)
	L2Hits        int64 // fills served by Redis
	L2Misses      int64 // fills that called Load
	L2Errors      int64 // Redis reads or writes that failed during a fill
	Invalidations int64 // invalidation messages received (own writes included)
	Resubscribes  int64 // reconnects of the subscription, each of which cleared L1
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
	group   stampede.Group[V]

	// gen counts local invalidations. A fill records it before reading L2 and stores
	// into L1 only if it is unchanged, under the L1 shard lock: otherwise a fill that
	// read the old value just before another instance's write could put that old
	// value into L1 after the invalidation for it had already been applied.
	gen atomic.Uint64

	l1Misses, l2Hits, l2Misses, l2Errs, invals, resubs atomic.Int64

	ps        *redis.PubSub
	done      chan struct{}
	closeOnce sync.Once
}

// New subscribes to the invalidation channel, waits for Redis to confirm, and starts
// the goroutine that applies invalidations. Close stops it.
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
	c := &Cache[V]{
		l1:      NewLocal[V](o.L1),
		rdb:     o.Redis,
		prefix:  o.Prefix,
		channel: o.Prefix + "l1-invalidate",
		load:    o.Load,
		l2TTL:   o.L2TTL,
		timeout: o.Timeout,
		done:    make(chan struct{}),
	}
	c.ps = o.Redis.Subscribe(ctx, c.channel)
	// Receive the subscription confirmation before returning, so a write made right
	// after New cannot be missed by this instance.
	if _, err := c.ps.Receive(ctx); err != nil {
		_ = c.ps.Close()
		return nil, err
	}
	go c.listen(c.ps.ChannelWithSubscriptions())
	return c, nil
}

func (c *Cache[V]) listen(ch <-chan any) {
	defer close(c.done)
	for m := range ch {
		switch m := m.(type) {
		case *redis.Message:
			c.invals.Add(1)
			c.invalidateLocal(m.Payload)
		case *redis.Subscription:
			// The first confirmation was consumed in New; any further one means
			// go-redis reconnected and re-subscribed, and messages may have been lost.
			if m.Kind == "subscribe" {
				c.resubs.Add(1)
				c.gen.Add(1)
				c.l1.Clear()
			}
		}
	}
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
	v, err := c.readL2(ctx, key)
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
	default:
		c.l2Errs.Add(1)
		if v, err = c.load(ctx, key); err != nil {
			return v, err
		}
	}
	c.l1.setIf(key, v, func() bool { return c.gen.Load() == gen })
	return v, nil
}

func (c *Cache[V]) readL2(ctx context.Context, key string) (V, error) {
	var v V
	b, err := c.rdb.Get(ctx, c.prefix+key).Bytes()
	if err != nil {
		return v, err
	}
	err = json.Unmarshal(b, &v)
	return v, err
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

// Stats returns the counters.
func (c *Cache[V]) Stats() Stats {
	return Stats{
		L1Misses:      c.l1Misses.Load(),
		L2Hits:        c.l2Hits.Load(),
		L2Misses:      c.l2Misses.Load(),
		L2Errors:      c.l2Errs.Load(),
		Invalidations: c.invals.Load(),
		Resubscribes:  c.resubs.Load(),
	}
}

// Close unsubscribes and waits for the listening goroutine to end. It does not close
// the Redis client, which the caller owns.
func (c *Cache[V]) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.ps.Close()
		<-c.done
	})
	return err
}
