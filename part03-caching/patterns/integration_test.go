//go:build integration

package patterns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// pgEnv is real Redis + real PostgreSQL, with a prefix that namespaces both the
// Redis keys and the product IDs of this test.
type pgEnv struct {
	cfg    Config
	pg     PGStore
	db     *CountingStore
	prefix string
}

func newPGEnv(t *testing.T) *pgEnv {
	t.Helper()
	rdb, prefix := fixture.Redis(t)
	pool := fixture.Postgres(t)
	ctx := context.Background()
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pg := PGStore{Pool: pool}
	t.Cleanup(func() { _ = pg.DeletePrefix(context.Background(), prefix) })
	return &pgEnv{
		cfg: Config{Redis: rdb, Prefix: prefix, TTL: time.Minute, NegativeTTL: 2 * time.Second},
		pg:  pg, db: &CountingStore{Store: pg}, prefix: prefix,
	}
}

func (e *pgEnv) id(s string) string { return e.prefix + s }

func TestIntegrationMigrateConcurrently(t *testing.T) {
	pool := fixture.Postgres(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := Migrate(context.Background(), pool); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestIntegrationCacheAside(t *testing.T) {
	e := newPGEnv(t)
	ctx := context.Background()
	a := NewCacheAside(e.cfg, e.db)
	id := e.id("p1")
	if _, err := e.pg.Put(ctx, Product{ID: id, Name: "mug", PriceCents: 900}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if p, err := a.Get(ctx, id); err != nil || p.PriceCents != 900 {
			t.Fatalf("Get = %+v, %v", p, err)
		}
	}
	if e.db.Gets.Load() != 1 {
		t.Fatalf("PostgreSQL reads = %d, want 1", e.db.Gets.Load())
	}
	if _, err := a.Update(ctx, Product{ID: id, Name: "mug", PriceCents: 850}); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.cfg.Redis.Exists(ctx, Key(e.prefix, id)).Result(); n != 0 {
		t.Fatal("Update left the key in Redis")
	}
	if p, err := a.Get(ctx, id); err != nil || p.PriceCents != 850 || p.Version != 2 {
		t.Fatalf("Get after Update = %+v, %v", p, err)
	}
}

func TestIntegrationNegativeCaching(t *testing.T) {
	e := newPGEnv(t)
	ctx := context.Background()
	a := NewCacheAside(e.cfg, e.db)
	for range 50 {
		if _, err := a.Get(ctx, e.id("absent")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := e.db.Gets.Load(); n != 1 {
		t.Fatalf("PostgreSQL reads = %d for 50 lookups of an absent ID, want 1", n)
	}
	ttl, err := e.cfg.Redis.PTTL(ctx, Key(e.prefix, e.id("absent"))).Result()
	if err != nil || ttl <= 0 || ttl > e.cfg.NegativeTTL {
		t.Fatalf("tombstone TTL = %v, %v; want (0, %v]", ttl, err, e.cfg.NegativeTTL)
	}
}

func TestIntegrationReadThroughOneQueryForConcurrentMisses(t *testing.T) {
	const n = 300
	e := newPGEnv(t)
	ctx := context.Background()
	id := e.id("hot")
	if _, err := e.pg.Put(ctx, Product{ID: id, Name: "console"}); err != nil {
		t.Fatal(err)
	}
	var r *ReadThrough
	r = NewReadThrough(e.cfg, func(ctx context.Context, id string) (Product, error) {
		for r.group.Stats().Waiting < n {
			time.Sleep(time.Millisecond)
		}
		return e.db.Get(ctx, id)
	}, 30*time.Second)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := r.Get(ctx, id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := e.db.Gets.Load(); got != 1 {
		t.Fatalf("PostgreSQL reads = %d, want 1", got)
	}
}

func TestIntegrationWriteThroughAndWriteAround(t *testing.T) {
	e := newPGEnv(t)
	ctx := context.Background()
	wt := NewWriteThrough(e.cfg, e.db)
	id := e.id("acct")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := wt.Put(ctx, Product{ID: id, Name: "balance", PriceCents: int64(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	db, err := e.pg.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.cfg.Redis.Get(ctx, Key(e.prefix, id)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := decode(b); err != nil || c != db || db.Version != 20 {
		t.Fatalf("cache %+v (%v) vs PostgreSQL %+v: write-through must converge", c, err, db)
	}

	wa := NewWriteAround(e.cfg, e.db)
	logID := e.id("log-1")
	if _, err := wa.Put(ctx, Product{ID: logID, Name: "entry"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.cfg.Redis.Exists(ctx, Key(e.prefix, logID)).Result(); n != 0 {
		t.Fatal("write-around wrote the cache")
	}
	if p, err := wa.Get(ctx, logID); err != nil || p.Name != "entry" {
		t.Fatalf("Get = %+v, %v", p, err)
	}
}

func TestIntegrationWriteBehindCleanShutdownLosesNothing(t *testing.T) {
	e := newPGEnv(t)
	ctx := context.Background()
	const n = 1000
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: 50 * time.Millisecond, MaxPending: 64})
	for i := range n {
		if err := w.Put(ctx, Product{ID: e.id(fmt.Sprint("v", i)), Name: "view", PriceCents: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, err := e.pg.Count(ctx, e.prefix); err != nil || rows != n {
		t.Fatalf("PostgreSQL rows = %d (%v) after clean shutdown, want %d", rows, err, n)
	}
}

func TestIntegrationWriteBehindCrashLosesAtMostTheWindow(t *testing.T) {
	e := newPGEnv(t)
	ctx := context.Background()
	const n, window = 1000, 64
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: time.Hour, MaxPending: window})
	for i := range n {
		if err := w.Put(ctx, Product{ID: e.id(fmt.Sprint("v", i)), Name: "view"}); err != nil {
			t.Fatal(err)
		}
	}
	lost := w.Crash()
	rows, err := e.pg.Count(ctx, e.prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("crash: %d rows in PostgreSQL, %d writes lost (window %d)", rows, lost, window)
	if rows+lost != n || lost > window || lost != n%window {
		t.Fatalf("rows %d + lost %d, want %d + %d (≤ window %d)", rows, lost, n-n%window, n%window, window)
	}
}
