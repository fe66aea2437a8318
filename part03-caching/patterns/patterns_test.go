package patterns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	mr  *miniredis.Miniredis
	rdb *redis.Client
	db  *CountingStore
	mem *MemStore
	cfg Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	mem := NewMemStore(0)
	return &env{
		mr: mr, rdb: rdb, mem: mem, db: &CountingStore{Store: mem},
		cfg: Config{Redis: rdb, Prefix: "part03:unit:", TTL: time.Minute, NegativeTTL: 10 * time.Second},
	}
}

func (e *env) cached(t *testing.T, id string) (Product, bool) {
	t.Helper()
	p, err := newCache(e.cfg).get(context.Background(), id)
	if errors.Is(err, errMiss) {
		return Product{}, false
	}
	if err != nil {
		t.Fatalf("cache get %s: %v", id, err)
	}
	return p, true
}

func TestCacheAsideReadFillsAndUpdateDeletes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := NewCacheAside(e.cfg, e.db)
	if _, err := e.mem.Put(ctx, Product{ID: "p1", Name: "mug", PriceCents: 900}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if p, err := a.Get(ctx, "p1"); err != nil || p.PriceCents != 900 {
			t.Fatalf("Get = %+v, %v", p, err)
		}
	}
	if n := e.db.Gets.Load(); n != 1 {
		t.Fatalf("database reads = %d, want 1 (then hits)", n)
	}
	if _, err := a.Update(ctx, Product{ID: "p1", Name: "mug", PriceCents: 800}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.cached(t, "p1"); ok {
		t.Fatal("Update must delete the key, not rewrite it")
	}
	if p, err := a.Get(ctx, "p1"); err != nil || p.PriceCents != 800 || p.Version != 2 {
		t.Fatalf("Get after update = %+v, %v", p, err)
	}
}

func TestNegativeCachingProtectsTheDatabase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := NewCacheAside(e.cfg, e.db)
	for range 100 {
		if _, err := a.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	}
	if n := e.db.Gets.Load(); n != 1 {
		t.Fatalf("100 lookups of an absent ID reached the database %d times, want 1", n)
	}
	if ttl := e.mr.TTL(Key(e.cfg.Prefix, "nope")); ttl != e.cfg.NegativeTTL {
		t.Fatalf("tombstone TTL = %v, want %v", ttl, e.cfg.NegativeTTL)
	}
	e.mr.FastForward(e.cfg.NegativeTTL)
	_, _ = a.Get(ctx, "nope")
	if n := e.db.Gets.Load(); n != 2 {
		t.Fatalf("after NegativeTTL: database reads = %d, want 2", n)
	}
}

func TestNegativeCachingDisabled(t *testing.T) {
	e := newEnv(t)
	e.cfg.NegativeTTL = -1
	a := NewCacheAside(e.cfg, e.db)
	for range 10 {
		_, _ = a.Get(context.Background(), "nope")
	}
	if n := e.db.Gets.Load(); n != 10 {
		t.Fatalf("database reads = %d, want 10 with negative caching off", n)
	}
}

// TestWritesAndTombstones: which writes clear a cached "not found".
func TestWritesAndTombstones(t *testing.T) {
	ctx := context.Background()
	newProduct := Product{ID: "new", Name: "lamp", PriceCents: 4000}
	prime := func(t *testing.T, e *env) {
		if _, err := NewCacheAside(e.cfg, e.db).Get(ctx, "new"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("priming read: %v", err)
		}
	}
	t.Run("cache-aside update deletes it", func(t *testing.T) {
		e := newEnv(t)
		prime(t, e)
		a := NewCacheAside(e.cfg, e.db)
		if _, err := a.Update(ctx, newProduct); err != nil {
			t.Fatal(err)
		}
		if p, err := a.Get(ctx, "new"); err != nil || p.Name != "lamp" {
			t.Fatalf("Get = %+v, %v", p, err)
		}
	})
	t.Run("write-through replaces it", func(t *testing.T) {
		e := newEnv(t)
		prime(t, e)
		w := NewWriteThrough(e.cfg, e.db)
		if _, err := w.Put(ctx, newProduct); err != nil {
			t.Fatal(err)
		}
		before := e.db.Gets.Load()
		if p, err := w.Get(ctx, "new"); err != nil || p.Name != "lamp" {
			t.Fatalf("Get = %+v, %v", p, err)
		}
		if e.db.Gets.Load() != before {
			t.Fatal("read after write-through reached the database")
		}
	})
	t.Run("write-around leaves it until NegativeTTL", func(t *testing.T) {
		e := newEnv(t)
		prime(t, e)
		w := NewWriteAround(e.cfg, e.db)
		if _, err := w.Put(ctx, newProduct); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Get(ctx, "new"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get right after a write-around insert = %v; the tombstone should still hide it", err)
		}
		e.mr.FastForward(e.cfg.NegativeTTL)
		if p, err := w.Get(ctx, "new"); err != nil || p.Name != "lamp" {
			t.Fatalf("Get after NegativeTTL = %+v, %v", p, err)
		}
	})
}

func TestWriteAroundDoesNotTouchTheCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := NewWriteAround(e.cfg, e.db)
	if _, err := w.Put(ctx, Product{ID: "log-1", Name: "entry"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.cached(t, "log-1"); ok {
		t.Fatal("write-around filled the cache on write")
	}
	if _, err := w.Get(ctx, "log-1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.cached(t, "log-1"); !ok {
		t.Fatal("the first read did not fill the cache")
	}
}

func TestReadThroughCoalescesConcurrentMisses(t *testing.T) {
	const n = 200
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.mem.Put(ctx, Product{ID: "hot", Name: "console"}); err != nil {
		t.Fatal(err)
	}
	var r *ReadThrough
	r = NewReadThrough(e.cfg, func(ctx context.Context, id string) (Product, error) {
		for r.group.Stats().Waiting < n { // hold the load until every caller has joined
			time.Sleep(time.Millisecond)
		}
		return e.db.Get(ctx, id)
	}, 10*time.Second)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if p, err := r.Get(ctx, "hot"); err != nil || p.Name != "console" {
				t.Errorf("Get = %+v, %v", p, err)
			}
		})
	}
	wg.Wait()
	if got := e.db.Gets.Load(); got != 1 {
		t.Fatalf("database reads = %d for %d concurrent misses, want 1", got, n)
	}
}

// TestReadThroughLateMissDoesNotReload: no gate this time, so some callers miss the
// cache before the first load fills it and reach the group after that load ended.
// The leader's second look at the cache must keep it to one database read per key.
func TestReadThroughLateMissDoesNotReload(t *testing.T) {
	const keys, readers = 40, 32
	e := newEnv(t)
	ctx := context.Background()
	r := NewReadThrough(e.cfg, e.db.Get, 10*time.Second)
	for k := range keys {
		id := fmt.Sprintf("late-%d", k)
		if _, err := e.mem.Put(ctx, Product{ID: id, Name: "x"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range readers {
			wg.Go(func() {
				if _, err := r.Get(ctx, id); err != nil {
					t.Errorf("Get(%s): %v", id, err)
				}
			})
		}
		wg.Wait()
	}
	if got := e.db.Gets.Load(); got != keys {
		t.Fatalf("database reads = %d for %d keys read by %d concurrent callers each, want %d", got, keys, readers, keys)
	}
}

// TestWriteThroughConcurrentWritersConverge: many writers of one key; whatever order
// their cache writes land in, the cache ends equal to the database.
func TestWriteThroughConcurrentWritersConverge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := NewWriteThrough(e.cfg, e.db)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := w.Put(ctx, Product{ID: "acct", Name: "balance", PriceCents: int64(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	db, err := e.mem.Get(ctx, "acct")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := e.cached(t, "acct")
	if !ok || c != db {
		t.Fatalf("cache %+v (present %v) != database %+v", c, ok, db)
	}
	if db.Version != 50 {
		t.Fatalf("version = %d, want 50", db.Version)
	}
}

func TestCacheRefusesOlderVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := newCache(e.cfg)
	if err := c.put(ctx, Product{ID: "p", Name: "new", Version: 7}); err != nil {
		t.Fatal(err)
	}
	if err := c.put(ctx, Product{ID: "p", Name: "old", Version: 6}); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.cached(t, "p"); p.Name != "new" {
		t.Fatalf("an older version replaced a newer one: %+v", p)
	}
}

func TestCacheOutageFallsBackToDatabase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.mem.Put(ctx, Product{ID: "p1", Name: "mug"}); err != nil {
		t.Fatal(err)
	}
	addr := e.mr.Addr()
	e.mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	e.cfg.Redis = rdb
	if p, err := NewCacheAside(e.cfg, e.db).Get(ctx, "p1"); err != nil || p.Name != "mug" {
		t.Fatalf("Get with Redis down = %+v, %v", p, err)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, b := range []string{"", "{}", "12"} {
		if _, err := decode([]byte(b)); err == nil {
			t.Errorf("decode(%q) accepted", b)
		}
	}
	p := Product{ID: "a:b", Name: "x:y", Version: 3}
	b, _ := encode(p)
	if got, err := decode(b); err != nil || got != p {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}
