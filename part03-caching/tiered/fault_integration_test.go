//go:build integration

package tiered

import (
	"context"
	"sync"
	"testing"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// TestFaultRedisDown kills the stack's Redis under two instances of the tiered cache
// and checks what a reader of the chapter would rely on:
//   - while Redis is down, L1 keeps serving what it holds, and misses fall through to
//     the system of record once per key per instance (singleflight), not once per request;
//   - a write through the cache fails loudly instead of being lost silently;
//   - when Redis is back, the subscription is re-established, L1 is cleared (messages
//     sent while it was down are lost), and invalidations reach the other instance again.
//
// It breaks a shared service, so `make test` runs it after the other tests, alone.
func TestFaultRedisDown(t *testing.T) {
	rdb, prefix := fixture.Redis(t)
	ctx := context.Background()
	src := &source{m: map[string]product{"hot": {"hot", 100}, "cold": {"cold", 7}}}
	a := newCache(t, rdb, prefix, src.load)
	b := newCache(t, rdb, prefix, src.load)

	if p, err := a.Get(ctx, "hot"); err != nil || p.Price != 100 {
		t.Fatalf("warm-up: %+v, %v", p, err)
	}
	loadsBefore := src.loads.Load()

	stack.Kill(t, "redis")

	// L1 hit: no Redis, no load.
	if p, err := a.Get(ctx, "hot"); err != nil || p.Price != 100 {
		t.Fatalf("L1 hit with Redis down: %+v, %v", p, err)
	}
	// 200 concurrent misses of one key: one load, every caller answered.
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if p, err := a.Get(ctx, "cold"); err != nil || p.Price != 7 {
				t.Errorf("miss with Redis down: %+v, %v", p, err)
			}
		})
	}
	wg.Wait()
	if got := src.loads.Load() - loadsBefore; got != 1 {
		t.Errorf("loads while Redis was down = %d for 200 concurrent misses of one key, want 1", got)
	}
	if st := a.Stats(); st.L2Errors < 1 {
		t.Errorf("L2 errors = %d with Redis down, want ≥ 1: %+v", st.L2Errors, st)
	}
	if err := b.Set(ctx, "hot", product{"hot", 90}); err == nil {
		t.Fatal("Set with Redis down returned nil: the write (and its invalidation) was lost silently")
	}

	stack.Restart(t, "redis")

	waitFor(t, "a re-subscribes", func() bool { return a.Stats().Resubscribes >= 1 })
	waitFor(t, "b re-subscribes", func() bool { return b.Stats().Resubscribes >= 1 })
	if _, ok := a.L1().Get("hot"); ok {
		t.Fatal("a kept its L1 across the outage: invalidations sent meanwhile would be missed")
	}
	if p, err := a.Get(ctx, "hot"); err != nil || p.Price != 100 {
		t.Fatalf("after restart: %+v, %v", p, err)
	}
	if err := b.Set(ctx, "hot", product{"hot", 80}); err != nil {
		t.Fatalf("Set after restart: %v", err)
	}
	waitFor(t, "a sees b's write", func() bool {
		p, err := a.Get(ctx, "hot")
		return err == nil && p.Price == 80
	})
}
