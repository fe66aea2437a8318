package tiered

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const unitPrefix = "part03:unit:"

func TestCacheReadsThroughL1ThenL2ThenLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemRedis(t)
		rdb := m.client(nil)
		src := newSource(product{"p1", 100})
		a := newCache(t, rdb, unitPrefix, src.load)
		b := newCache(t, rdb, unitPrefix, src.load)
		ctx := context.Background()

		p, err := a.Get(ctx, "p1")
		require.NoError(t, err)
		require.Equal(t, int64(100), p.Price)
		before := m.mr.CommandCount()
		for range 100 {
			_, err := a.Get(ctx, "p1")
			require.NoError(t, err)
		}
		assert.Equal(t, before, m.mr.CommandCount(), "100 L1 hits must send no command to Redis")
		_, err = b.Get(ctx, "p1") // b's L1 is empty: L2 serves it
		require.NoError(t, err)
		assert.Equal(t, int64(1), src.loads.Load())
		st := b.Stats()
		assert.Equal(t, int64(1), st.L2Hits)
		assert.Zero(t, st.L2Misses)
	})
}

func TestCacheInvalidationReachesOtherInstancesL1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		testInvalidationReachesOtherL1s(t, newMemRedis(t).client(nil), unitPrefix)
	})
}

// testInvalidationReachesOtherL1s is shared with the integration test on real Redis.
func testInvalidationReachesOtherL1s(t *testing.T, rdb redis.UniversalClient, prefix string) {
	src := newSource(product{"p1", 100})
	a := newCache(t, rdb, prefix, src.load)
	b := newCache(t, rdb, prefix, src.load)
	other := newCache(t, rdb, prefix+"other:", src.load) // another namespace: must not be touched
	ctx := context.Background()
	for _, c := range []*Cache[product]{a, b, other} {
		_, err := c.Get(ctx, "p1")
		require.NoError(t, err)
		_, ok := c.L1().Get("p1")
		require.True(t, ok, "L1 not filled")
	}

	require.NoError(t, a.Set(ctx, "p1", product{"p1", 90}))
	waitFor(t, "b's L1 to drop p1", func() bool { _, ok := b.L1().Get("p1"); return !ok })
	for name, c := range map[string]*Cache[product]{"a": a, "b": b} {
		p, err := c.Get(ctx, "p1")
		require.NoError(t, err)
		assert.Equal(t, int64(90), p.Price, "%s after invalidation", name)
	}
	_, ok := other.L1().Get("p1")
	assert.True(t, ok, "an invalidation leaked into another prefix")
	assert.GreaterOrEqual(t, b.Stats().Invalidations, int64(1))

	require.NoError(t, b.Delete(ctx, "p1"))
	waitFor(t, "a's L1 to drop p1 after Delete", func() bool { _, ok := a.L1().Get("p1"); return !ok })
	assert.Equal(t, int64(2), src.loads.Load(), "p1 for prefix and for prefix+other:")
	_, err := a.Get(ctx, "p1") // L2 was deleted: back to the source
	require.NoError(t, err)
	assert.Equal(t, int64(3), src.loads.Load(), "loads after Delete")
}

func TestCache1000ConcurrentL1MissesOneFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 1000
		release := make(chan struct{})
		var loads atomic.Int64
		c := newCache(t, newMemRedis(t).client(nil), unitPrefix, func(context.Context, string) (product, error) {
			loads.Add(1)
			<-release
			return product{"hot", 1}, nil
		})
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := c.Get(context.Background(), "hot")
				assert.NoError(t, err)
			})
		}
		synctest.Wait() // every caller is parked in the fill's Group, the fill in Load
		assert.Equal(t, int64(n), c.group.Stats().Waiting)
		close(release)
		wg.Wait()
		assert.Equal(t, int64(1), loads.Load())
		st := c.Stats()
		assert.Equal(t, int64(1), st.L2Misses)
		assert.Equal(t, int64(n), st.L1Misses)
	})
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	c := newCache(t, newMemRedis(t).client(nil), unitPrefix, newSource(product{"p1", 100}).load,
		func(o *Options[product]) { o.InvalidationBound = time.Hour }) // real clock: no lapse mid-measurement
	ctx := context.Background()
	_, err := c.Get(ctx, "p1")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = c.Get(ctx, "p1") }), "Cache.Get L1 hit allocates")
}

// TestCacheResubscribeClearsL1: when the subscription's connection drops, go-redis
// re-subscribes; messages published meanwhile are lost, so the instance clears L1.
func TestCacheResubscribeClearsL1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemRedis(t)
		c := newCache(t, m.client(nil), unitPrefix, newSource(product{"p1", 100}).load)
		_, err := c.Get(context.Background(), "p1")
		require.NoError(t, err)
		m.kill() // every connection dropped: invalidations sent now would be lost
		m.restart()
		waitFor(t, "re-subscription", func() bool { return c.Stats().Resubscribes >= 1 })
		_, ok := c.L1().Get("p1")
		assert.False(t, ok, "L1 kept an entry across a reconnect; it may have missed its invalidation")
		waitFor(t, "L1 to serve again", c.Serving)
	})
}

// TestCacheLostInvalidationBound is the stated bound: an instance whose subscription
// silently stops delivering (a black hole: no error, no close) serves a value whose
// invalidation it missed for less than InvalidationBound after the write returned,
// then reads L2, and serves L1 again once a new subscription is confirmed.
func TestCacheLostInvalidationBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		testLostInvalidationBound(t, newMemRedis(t).client, unitPrefix, 400*time.Millisecond)
	})
}

// testLostInvalidationBound is shared with the integration test on real Redis. client
// returns a client whose connections become black holes while *hole is true.
func testLostInvalidationBound(t *testing.T, client func(hole *atomic.Bool) *redis.Client, prefix string, bound time.Duration) {
	var hole atomic.Bool
	rdb := client(nil)
	src := newSource(product{"p1", 100})
	bounded := func(o *Options[product]) { o.InvalidationBound = bound }
	a := newCache(t, subClient{rdb, client(&hole)}, prefix, src.load, bounded)
	b := newCache(t, rdb, prefix, src.load, bounded)
	ctx := context.Background()
	for _, c := range []*Cache[product]{a, b} {
		_, err := c.Get(ctx, "p1")
		require.NoError(t, err)
	}

	hole.Store(true)      // a's subscription goes silent
	time.Sleep(bound / 3) // somewhere inside a's current lease
	require.NoError(t, b.Set(ctx, "p1", product{"p1", 90}))
	wrote := time.Now() // the write and its PUBLISH returned before this instant

	var lastStale time.Time
	for deadline := wrote.Add(2 * bound); time.Now().Before(deadline); time.Sleep(bound / 100) {
		asked := time.Now()
		p, err := a.Get(ctx, "p1")
		require.NoError(t, err)
		if p.Price == 100 {
			lastStale = asked
		}
	}
	t.Logf("stale reads on the silent instance ended %v after the write (bound %v)", lastStale.Sub(wrote), bound)
	require.False(t, lastStale.IsZero(), "the silent instance never served the stale value: the test did not exercise the window")
	assert.Less(t, lastStale.Sub(wrote), bound, "an L1 served a value whose invalidation was lost for longer than InvalidationBound")
	assert.False(t, a.Serving(), "L1 still serving with a silent subscription")
	p, err := a.Get(ctx, "p1")
	require.NoError(t, err)
	assert.Equal(t, int64(90), p.Price, "past the bound the instance must read L2")

	hole.Store(false) // the network heals: the instance replaces the subscription
	waitFor(t, "the silent instance to serve L1 again", a.Serving)
	assert.GreaterOrEqual(t, a.Stats().PingTimeouts, int64(1))
	require.NoError(t, b.Set(ctx, "p1", product{"p1", 80}))
	waitFor(t, "invalidations to flow again", func() bool {
		p, err := a.Get(ctx, "p1")
		return err == nil && p.Price == 80
	})
}

// TestGoRedisAloneMissesASilentSubscription is why the Cache pings on its own:
// go-redis's Channel health check writes a PING every 3 s but never waits for the
// reply, and Receive sets no read deadline, so a subscription that silently stops
// delivering is never replaced: a minute later nothing has been reported and the
// message published meanwhile is gone.
func TestGoRedisAloneMissesASilentSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemRedis(t)
		var hole atomic.Bool
		pub, sub := m.client(nil), m.client(&hole)
		ctx := context.Background()
		ps := sub.Subscribe(ctx, "ch")
		_, err := ps.Receive(ctx)
		require.NoError(t, err)
		ch := ps.ChannelWithSubscriptions() // default health check: every 3 s
		hole.Store(true)
		require.NoError(t, pub.Publish(ctx, "ch", "invalidate p1").Err())
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Empty(t, ch, "go-redis reported something: it noticed the silent connection")
		hole.Store(false)
		require.NoError(t, pub.Publish(ctx, "ch", "invalidate p2").Err())
		synctest.Wait()
		require.Len(t, ch, 1, "the same connection delivers again once the network heals")
		msg := (<-ch).(*redis.Message)
		assert.Equal(t, "invalidate p2", msg.Payload, "the message published while silent was lost without a trace")
		require.NoError(t, ps.Close())
	})
}

func TestCacheRedisDownFallsBackToLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemRedis(t)
		src := newSource(product{"p1", 100})
		c := newCache(t, m.client(nil), unitPrefix, src.load)
		m.kill()
		p, err := c.Get(context.Background(), "p1")
		require.NoError(t, err, "Get with Redis down must fall back to Load")
		assert.Equal(t, int64(100), p.Price)
		assert.GreaterOrEqual(t, c.Stats().L2Errors, int64(1))
	})
}

// TestCacheL1NeverOutlivesL2: an L1 copy read from L2 expires with the L2 entry, so a
// value is never served older than L2TTL, whichever tier serves it.
func TestCacheL1NeverOutlivesL2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemRedis(t)
		rdb := m.client(nil)
		src := newSource(product{"p1", 100})
		short := func(o *Options[product]) { o.L2TTL = time.Second }
		a := newCache(t, rdb, unitPrefix, src.load, short)
		b := newCache(t, rdb, unitPrefix, src.load, short)
		ctx := context.Background()
		_, err := a.Get(ctx, "p1") // load, L2 for 1 s
		require.NoError(t, err)
		time.Sleep(800 * time.Millisecond)
		_, err = b.Get(ctx, "p1") // L2 hit with 200 ms left; L1 TTL is an hour
		require.NoError(t, err)
		time.Sleep(199 * time.Millisecond)
		_, ok := b.L1().Get("p1")
		assert.True(t, ok)
		time.Sleep(time.Millisecond)
		_, ok = b.L1().Get("p1")
		assert.False(t, ok, "b's L1 copy outlived the L2 entry it was read from")
	})
}

// TestCacheFillDoesNotOverwriteAConcurrentSet: a fill that loaded the old value from
// the system of record must not replace in L2 a value another instance Set while the
// load ran; otherwise every instance serves the old value for L2TTL.
func TestCacheFillDoesNotOverwriteAConcurrentSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rdb := newMemRedis(t).client(nil)
		ctx := context.Background()
		loading, release := make(chan struct{}), make(chan struct{})
		a := newCache(t, rdb, unitPrefix, func(context.Context, string) (product, error) {
			close(loading)
			<-release
			return product{"p1", 100}, nil // read before the write below committed
		})
		b := newCache(t, rdb, unitPrefix, newSource().load)

		done := make(chan error, 1)
		go func() { _, err := a.Get(ctx, "p1"); done <- err }()
		<-loading
		require.NoError(t, b.Set(ctx, "p1", product{"p1", 90}))
		close(release)
		require.NoError(t, <-done)
		synctest.Wait() // b's own invalidation has been applied
		p, err := b.Get(ctx, "p1")
		require.NoError(t, err)
		assert.Equal(t, int64(90), p.Price, "the fill clobbered the write in L2")
	})
}

// TestCacheReadsItsOwnWrite: after Set returns, this instance must serve the new value
// even if its subscription has not delivered the invalidation yet, including when a
// fill on this instance read L2 while the write was on its way.
func TestCacheReadsItsOwnWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemRedis(t)
		rdb := m.client(nil)
		var hole atomic.Bool
		ctx := context.Background()
		c := newCache(t, subClient{rdb, m.client(&hole)}, unitPrefix, newSource(product{"p1", 100}).load)
		_, err := c.Get(ctx, "p1")
		require.NoError(t, err)

		// Right before the write reaches Redis, another request on this instance fills
		// L1 from L2, which still holds the old value.
		var once sync.Once
		var hookErr error
		rdb.AddHook(pipelineHook(func(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
			return func(ctx context.Context, cmds []redis.Cmder) error {
				if len(cmds) > 2 { // the MULTI … EXEC of Set, not the fill's GET + PTTL
					once.Do(func() { _, hookErr = c.Get(ctx, "p1") })
				}
				return next(ctx, cmds)
			}
		}))
		hole.Store(true) // the invalidation message will not be delivered
		err = c.Set(ctx, "p1", product{"p1", 90})
		require.NoError(t, err)
		require.NoError(t, hookErr)
		p, err := c.Get(ctx, "p1")
		require.NoError(t, err)
		assert.Equal(t, int64(90), p.Price, "Get right after Set(90) on the same instance")
	})
}

type pipelineHook func(redis.ProcessPipelineHook) redis.ProcessPipelineHook

func (pipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return h(next)
}

func TestNewRejectsBadOptions(t *testing.T) {
	rdb := newMemRedis(t).client(nil)
	load := newSource().load
	for name, o := range map[string]Options[product]{
		"no Redis":                     {Load: load},
		"no Load":                      {Redis: rdb},
		"L1 TTL overflows":             {Redis: rdb, Load: load, L1: LocalOptions{TTL: 1 << 62}},
		"InvalidationBound below 10ms": {Redis: rdb, Load: load, InvalidationBound: time.Millisecond},
	} {
		_, err := New(context.Background(), o)
		assert.Error(t, err, name)
	}
}

// TestCacheServesNoL1WhileTheLeaseIsVoid: between a re-subscription and the
// pong that confirms it, nothing may be served from L1, on the fake clock as on
// the real one. (The void lease was 0, which the fake clock's times, counted
// from a 2026 epoch back to 2000, are all below: inside a synctest bubble the
// lease never lapsed.)
func TestCacheServesNoL1WhileTheLeaseIsVoid(t *testing.T) {
	check := func(t *testing.T) {
		m := newMemRedis(t)
		c := newCache(t, m.client(nil), unitPrefix, newSource(product{"p1", 100}).load)
		require.True(t, c.Serving())
		c.resubscribed() // as on a reconnect, before its ping comes back
		assert.False(t, c.Serving())
		c.L1().Set("p1", product{"p1", 100})
		_, ok := c.L1().Get("p1")
		assert.False(t, ok, "an L1 entry served while the lease is void")
	}
	t.Run("fake clock", func(t *testing.T) { synctest.Test(t, check) })
}
