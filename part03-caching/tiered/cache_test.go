package tiered

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// product stands for any value a service caches.
type product struct {
	ID    string `json:"id"`
	Price int64  `json:"price"`
}

// source is a system of record that counts loads.
type source struct {
	mu    sync.Mutex
	m     map[string]product
	loads atomic.Int64
}

func (s *source) load(_ context.Context, key string) (product, error) {
	s.loads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[key]
	if !ok {
		return product{}, errors.New("not found")
	}
	return p, nil
}

func newCache(t *testing.T, rdb redis.UniversalClient, prefix string, load func(context.Context, string) (product, error)) *Cache[product] {
	t.Helper()
	c, err := New(context.Background(), Options[product]{
		Redis: rdb, Prefix: prefix, Load: load,
		L1: LocalOptions{TTL: time.Hour}, // so only an invalidation can make an instance see a write
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func miniClient(t *testing.T) (*miniredis.Miniredis, *redis.Client) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return mr, rdb
}

var waitFor = fixture.WaitFor

func TestCacheReadsThroughL1ThenL2ThenLoad(t *testing.T) {
	mr, rdb := miniClient(t)
	src := &source{m: map[string]product{"p1": {"p1", 100}}}
	a := newCache(t, rdb, "part03:unit:", src.load)
	b := newCache(t, rdb, "part03:unit:", src.load)
	ctx := context.Background()

	if p, err := a.Get(ctx, "p1"); err != nil || p.Price != 100 {
		t.Fatalf("Get = %+v, %v", p, err)
	}
	before := mr.CommandCount()
	for range 100 {
		if _, err := a.Get(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := mr.CommandCount() - before; n != 0 {
		t.Fatalf("100 L1 hits sent %d commands to Redis, want 0", n)
	}
	if _, err := b.Get(ctx, "p1"); err != nil { // b's L1 is empty: L2 serves it
		t.Fatal(err)
	}
	if src.loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1", src.loads.Load())
	}
	if st := b.Stats(); st.L2Hits != 1 || st.L2Misses != 0 {
		t.Fatalf("b stats = %+v", st)
	}
}

func TestCacheInvalidationReachesOtherInstancesL1(t *testing.T) {
	_, rdb := miniClient(t)
	testInvalidationReachesOtherL1s(t, rdb, "part03:unit:")
}

// testInvalidationReachesOtherL1s is shared with the integration test on real Redis.
func testInvalidationReachesOtherL1s(t *testing.T, rdb redis.UniversalClient, prefix string) {
	src := &source{m: map[string]product{"p1": {"p1", 100}}}
	a := newCache(t, rdb, prefix, src.load)
	b := newCache(t, rdb, prefix, src.load)
	other := newCache(t, rdb, prefix+"other:", src.load) // another namespace: must not be touched
	ctx := context.Background()
	for _, c := range []*Cache[product]{a, b, other} {
		if _, err := c.Get(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.L1().Get("p1"); !ok {
			t.Fatal("L1 not filled")
		}
	}

	if err := a.Set(ctx, "p1", product{"p1", 90}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's L1 to drop p1", func() bool { _, ok := b.L1().Get("p1"); return !ok })
	for name, c := range map[string]*Cache[product]{"a": a, "b": b} {
		if p, err := c.Get(ctx, "p1"); err != nil || p.Price != 90 {
			t.Fatalf("%s after invalidation: %+v, %v; want price 90", name, p, err)
		}
	}
	if _, ok := other.L1().Get("p1"); !ok {
		t.Fatal("an invalidation leaked into another prefix")
	}
	if st := b.Stats(); st.Invalidations < 1 {
		t.Fatalf("b stats = %+v", st)
	}

	if err := b.Delete(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's L1 to drop p1 after Delete", func() bool { _, ok := a.L1().Get("p1"); return !ok })
	if src.loads.Load() != 2 { // p1 for prefix and for prefix+"other:"
		t.Fatalf("loads = %d, want 2", src.loads.Load())
	}
	if _, err := a.Get(ctx, "p1"); err != nil { // L2 was deleted: back to the source
		t.Fatal(err)
	}
	if src.loads.Load() != 3 {
		t.Fatalf("loads = %d, want 3 after Delete", src.loads.Load())
	}
}

func TestCache1000ConcurrentL1MissesOneFill(t *testing.T) {
	const n = 1000
	_, rdb := miniClient(t)
	var c *Cache[product]
	var loads atomic.Int64
	c = newCache(t, rdb, "part03:unit:", func(context.Context, string) (product, error) {
		loads.Add(1)
		waitFor(t, "all callers to join", func() bool { return c.group.Stats().Waiting == n })
		return product{"hot", 1}, nil
	})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := c.Get(context.Background(), "hot"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1", loads.Load())
	}
	if st := c.Stats(); st.L2Misses != 1 || st.L1Misses != n {
		t.Fatalf("stats = %+v", st)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	_, rdb := miniClient(t)
	src := &source{m: map[string]product{"p1": {"p1", 100}}}
	c := newCache(t, rdb, "part03:unit:", src.load)
	ctx := context.Background()
	if _, err := c.Get(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(1000, func() { _, _ = c.Get(ctx, "p1") }); a != 0 {
		t.Fatalf("Cache.Get L1 hit allocates %.1f times", a)
	}
}

func TestCacheResubscribeClearsL1(t *testing.T) {
	mr, rdb := miniClient(t)
	src := &source{m: map[string]product{"p1": {"p1", 100}}}
	c := newCache(t, rdb, "part03:unit:", src.load)
	if _, err := c.Get(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	// Drop every connection: invalidations sent now would be lost.
	mr.Close()
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "re-subscription", func() bool { return c.Stats().Resubscribes >= 1 })
	if _, ok := c.L1().Get("p1"); ok {
		t.Fatal("L1 kept an entry across a reconnect; it may have missed its invalidation")
	}
}

func TestCacheRedisDownFallsBackToLoad(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	src := &source{m: map[string]product{"p1": {"p1", 100}}}
	c := newCache(t, rdb, "part03:unit:", src.load)
	mr.Close()
	p, err := c.Get(context.Background(), "p1")
	if err != nil || p.Price != 100 {
		t.Fatalf("Get with Redis down = %+v, %v; want the loaded value", p, err)
	}
	if st := c.Stats(); st.L2Errors < 1 {
		t.Fatalf("stats = %+v, want L2 errors counted", st)
	}
}
