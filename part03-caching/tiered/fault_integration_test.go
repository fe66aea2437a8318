//go:build integration

package tiered

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// TestFaultRedisDown kills the stack's Redis under three instances of the tiered cache
// and checks what a reader of the chapter would rely on:
//   - while Redis is down, an instance keeps serving what its L1 holds for at most
//     its InvalidationBound (a: 1 minute), then stops (c: 300 ms) and reads through;
//   - misses fall through to the system of record once per key per instance
//     (singleflight), not once per request;
//   - a write through the cache fails loudly instead of being lost silently;
//   - when Redis is back, the subscriptions are re-established, L1 is cleared
//     (messages sent while it was down are lost), and invalidations flow again.
//
// It breaks a shared service, so `make test` runs it after the other tests, alone.
func TestFaultRedisDown(t *testing.T) {
	rdb, prefix := fixture.Redis(t)
	ctx := context.Background()
	src := newSource(product{"hot", 100}, product{"cold", 7})
	a := newCache(t, rdb, prefix, src.load, func(o *Options[product]) { o.InvalidationBound = time.Minute })
	b := newCache(t, rdb, prefix, src.load)
	c := newCache(t, rdb, prefix, src.load, func(o *Options[product]) { o.InvalidationBound = 300 * time.Millisecond })

	for _, inst := range []*Cache[product]{a, c} {
		p, err := inst.Get(ctx, "hot")
		require.NoError(t, err)
		require.Equal(t, int64(100), p.Price)
	}
	loadsBefore := src.loads.Load()

	stack.Kill(t, "redis")

	// L1 hit within a's bound: no Redis, no load.
	p, err := a.Get(ctx, "hot")
	require.NoError(t, err, "L1 hit with Redis down")
	assert.Equal(t, int64(100), p.Price)
	assert.Equal(t, loadsBefore, src.loads.Load(), "an L1 hit loaded from the system of record")
	// 200 concurrent misses of one key: one load, every caller answered.
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			p, err := a.Get(ctx, "cold")
			if assert.NoError(t, err, "miss with Redis down") {
				assert.Equal(t, int64(7), p.Price)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), src.loads.Load()-loadsBefore, "loads while Redis was down for 200 concurrent misses of one key")
	assert.GreaterOrEqual(t, a.Stats().L2Errors, int64(1))
	// c's bound has passed: its L1 no longer serves, reads go through to Load.
	waitFor(t, "c's L1 to stop serving", func() bool { return !c.Serving() })
	p, err = c.Get(ctx, "hot")
	require.NoError(t, err)
	assert.Equal(t, int64(100), p.Price)
	assert.Equal(t, int64(2), src.loads.Load()-loadsBefore, "c past its bound must load instead of serving L1")

	require.Error(t, b.Set(ctx, "hot", product{"hot", 90}), "Set with Redis down returned nil: the write (and its invalidation) was lost silently")

	stack.Restart(t, "redis")

	for name, inst := range map[string]*Cache[product]{"a": a, "b": b, "c": c} {
		waitFor(t, name+" re-subscribes", func() bool { return inst.Stats().Resubscribes >= 1 })
	}
	_, ok := a.L1().Get("hot")
	require.False(t, ok, "a kept its L1 across the outage: invalidations sent meanwhile would be missed")
	p, err = a.Get(ctx, "hot")
	require.NoError(t, err, "after restart")
	assert.Equal(t, int64(100), p.Price)
	require.NoError(t, b.Set(ctx, "hot", product{"hot", 80}), "Set after restart")
	waitFor(t, "a sees b's write", func() bool {
		p, err := a.Get(ctx, "hot")
		return err == nil && p.Price == 80
	})
}
