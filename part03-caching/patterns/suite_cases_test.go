package patterns

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Cases every pattern passes, and the ones of cache-aside, read-through,
// write-through and write-around. Write-behind's own are in suite_writebehind_test.go.

var commonCases = []suiteCase{
	{"a write is read back", nil, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		p := e.open(t, k)
		want := Product{ID: e.id("p1"), Name: "Zoë's mug 山", PriceCents: 900}
		require.NoError(t, p.Put(ctx, want))
		got, err := p.Get(ctx, want.ID)
		require.NoError(t, err)
		assert.Equal(t, want, withoutVersion(got))
		settle(t, p)
		assert.Equal(t, want, withoutVersion(e.committed(t, want.ID)))
	}},
	{"an absent ID reaches the database once per NegativeTTL", nil, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		p := e.open(t, k)
		id := e.id("absent")
		for range 50 {
			_, err := p.Get(ctx, id)
			require.ErrorIs(t, err, ErrNotFound)
		}
		assert.EqualValues(t, 1, e.db.Gets.Load(), "50 lookups of an absent ID")
		ttl, err := e.rdb.PTTL(ctx, e.key(id)).Result()
		require.NoError(t, err)
		assert.True(t, ttl > 0 && ttl <= e.cfg.NegativeTTL, "tombstone TTL %v, want (0, %v]", ttl, e.cfg.NegativeTTL)
		e.expire(e.key(id))
		_, err = p.Get(ctx, id)
		require.ErrorIs(t, err, ErrNotFound)
		assert.EqualValues(t, 2, e.db.Gets.Load(), "after the tombstone lapsed")
	}},
	{"negative caching can be turned off", nil, func(t *testing.T, e *env, k kind) {
		e.cfg.NegativeTTL = -1
		p := e.open(t, k)
		for range 10 {
			_, err := p.Get(context.Background(), e.id("absent"))
			require.ErrorIs(t, err, ErrNotFound)
		}
		assert.EqualValues(t, 10, e.db.Gets.Load())
	}},
	{"what the database cannot store is refused before cache and database", nil, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		p := e.open(t, k)
		for _, bad := range []Product{
			{ID: "", Name: "no id"},
			{ID: e.id("nul"), Name: "a\x00b"},
			{ID: e.id("nul\x00id"), Name: "x"},
			{ID: e.id("utf8"), Name: "\xff\xfe"},
			{ID: e.id(strings.Repeat("x", MaxIDLen)), Name: "x"},
			{ID: e.id("long"), Name: strings.Repeat("é", MaxNameLen/2+1)},
		} {
			assert.ErrorIs(t, p.Put(ctx, bad), ErrInvalid, "Put(%.40q)", bad.ID+" "+bad.Name)
		}
		settle(t, p)
		assert.Zero(t, e.db.Writes(), "database writes")
		assert.Empty(t, e.cacheKeys(t), "cache keys")
	}},
	{"a malformed ID is ErrInvalid without a database read", nil, func(t *testing.T, e *env, k kind) {
		p := e.open(t, k)
		for _, id := range []string{"", "a\x00b", "\xff", strings.Repeat("x", MaxIDLen+1)} {
			_, err := p.Get(context.Background(), id)
			assert.ErrorIs(t, err, ErrInvalid, "Get(%.20q)", id)
		}
		assert.Zero(t, e.db.Gets.Load())
	}},
	// The article's table calls write-around "Strong" and the others "Eventual".
	// Sequentially, every pattern but write-around serves the new value at once, here
	// and in another process; write-around serves the old one until the TTL.
	{"a write replaces a cached value, here and in another process", nil, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		p, other := e.open(t, k), e.open(t, k)
		id := e.id("p")
		require.NoError(t, p.Put(ctx, Product{ID: id, Name: "v1"}))
		settle(t, p)
		for _, q := range []Pattern{p, other} {
			got, err := q.Get(ctx, id) // fills the cache
			require.NoError(t, err)
			require.Equal(t, "v1", got.Name)
		}
		require.NoError(t, p.Put(ctx, Product{ID: id, Name: "v2"}))
		want := "v2"
		if k.name == "write-around" {
			want = "v1" // stale until the TTL: not "Strong"
		}
		for i, q := range []Pattern{p, other} {
			got, err := q.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, want, got.Name, "instance %d right after the write", i)
		}
		settle(t, p)
		e.expire(e.key(id))
		got, err := other.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "v2", got.Name, "after the TTL")
	}},
	{"a write replaces a cached not-found", nil, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		p := e.open(t, k)
		id := e.id("new")
		_, err := p.Get(ctx, id)
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, p.Put(ctx, Product{ID: id, Name: "lamp"}))
		_, err = p.Get(ctx, id)
		if k.name == "write-around" {
			// Write-around never touches the cache: the tombstone hides the insert
			// until NegativeTTL lapses.
			require.ErrorIs(t, err, ErrNotFound)
			e.expire(e.key(id))
			_, err = p.Get(ctx, id)
		}
		assert.NoError(t, err)
	}},
	{"with Redis down, writes and reads still reach the database", nil, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		e.cfg = e.deadRedis(t)
		p := e.open(t, k)
		id := e.id("p")
		err := p.Put(ctx, Product{ID: id, Name: "stored"})
		switch k.name {
		case "write-behind", "write-around":
			require.NoError(t, err) // neither needs the cache to succeed
		default:
			require.ErrorContains(t, err, "stored, but") // the write happened; the error says the cache may be stale
		}
		got, err := p.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "stored", got.Name)
		settle(t, p)
		assert.Equal(t, "stored", e.committed(t, id).Name)
	}},
}

var asideCases = []suiteCase{
	{"reads fill the cache and a write deletes the key", []string{"cache-aside", "read-through"}, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		p := e.open(t, k)
		id := e.id("p")
		require.NoError(t, p.Put(ctx, Product{ID: id, Name: "mug", PriceCents: 900}))
		for range 5 {
			got, err := p.Get(ctx, id)
			require.NoError(t, err)
			require.EqualValues(t, 900, got.PriceCents)
		}
		assert.EqualValues(t, 1, e.db.Gets.Load(), "database reads for 5 Gets")
		require.NoError(t, p.Put(ctx, Product{ID: id, Name: "mug", PriceCents: 800}))
		_, ok := e.cached(t, id)
		assert.False(t, ok, "a write must delete the key, not rewrite it")
		got, err := p.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, Product{ID: id, Name: "mug", PriceCents: 800, Version: 2}, got)
	}},
	// The article: "Deletion is always safe". Not against a reader that loaded the
	// row before the write: its fill lands after the DEL and the old value is served
	// until the TTL.
	{"a read that loaded the old row before a write caches it after the delete", []string{"cache-aside", "read-through"}, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		p := e.open(t, k)
		id := e.id("p")
		require.NoError(t, p.Put(ctx, Product{ID: id, Name: "old"}))
		finish := e.heldRead(t, p, id) // the reader has the old row
		require.NoError(t, p.Put(ctx, Product{ID: id, Name: "new"}))
		require.NoError(t, finish())
		got, err := p.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "old", got.Name, "served from the cache while the database has %q", e.committed(t, id).Name)
		e.expire(e.key(id))
		got, err = p.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "new", got.Name, "after the TTL")
	}},
}

var readThroughCases = []suiteCase{
	{"concurrent misses of one key make one database read", []string{"read-through"}, func(t *testing.T, e *env, k kind) {
		const n = 200
		ctx := context.Background()
		require.NoError(t, e.store.PutBatch(ctx, []Product{{ID: e.id("hot"), Name: "console"}}))
		r := e.open(t, k).(*ReadThrough)
		h := newHold()
		e.fault.holdGet.Store(h)
		errs := make(chan error, n)
		for range n {
			go func() {
				p, err := r.Get(ctx, e.id("hot"))
				if err == nil && p.Name != "console" {
					err = fmt.Errorf("got %+v", p)
				}
				errs <- err
			}()
		}
		// Hold the load until every caller has joined its flight.
		e.waitFor(t, "all callers waiting on one load", func() bool { return r.group.Stats().Waiting == n })
		close(h.release)
		for range n {
			require.NoError(t, within(t, "a reader", errs))
		}
		assert.EqualValues(t, 1, e.db.Gets.Load(), "database reads for %d concurrent misses", n)
	}},
	// Without a hold, some callers miss the cache before the first load fills it and
	// reach the group after that load ended: the leader's second look at the cache
	// keeps it to one database read per key.
	{"a late miss does not load again", []string{"read-through"}, func(t *testing.T, e *env, k kind) {
		const keys, readers = 20, 16
		ctx := context.Background()
		r := e.open(t, k)
		for i := range keys {
			id := e.id(fmt.Sprint("late-", i))
			require.NoError(t, e.store.PutBatch(ctx, []Product{{ID: id, Name: "x"}}))
			errs := make(chan error, readers)
			for range readers {
				go func() { _, err := r.Get(ctx, id); errs <- err }()
			}
			for range readers {
				require.NoError(t, within(t, "a reader", errs))
			}
		}
		assert.EqualValues(t, keys, e.db.Gets.Load(), "database reads for %d keys read by %d callers each", keys, readers)
	}},
}

var writeThroughCases = []suiteCase{
	{"concurrent writers leave the cache equal to the database", []string{"write-through"}, func(t *testing.T, e *env, k kind) {
		const n = 50
		ctx := context.Background()
		w := e.open(t, k)
		id := e.id("acct")
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- w.Put(ctx, Product{ID: id, Name: "balance", PriceCents: int64(i)}) }()
		}
		for range n {
			require.NoError(t, within(t, "a writer", errs))
		}
		db := e.committed(t, id)
		c, ok := e.cached(t, id)
		require.True(t, ok)
		assert.Equal(t, db, c)
		assert.EqualValues(t, n, db.Version)
	}},
	{"the cache refuses an older version", []string{"write-through"}, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		c := newCache(e.cfg)
		id := e.id("p")
		require.NoError(t, c.put(ctx, Product{ID: id, Name: "new", Version: 7}))
		require.NoError(t, c.put(ctx, Product{ID: id, Name: "old", Version: 6}))
		got, _ := e.cached(t, id)
		assert.Equal(t, "new", got.Name)
	}},
	// The article's flow is "App → Cache → DB (sync)". Cache first, a write the
	// database refuses is served from the cache; database first, it never is.
	{"a write the database refuses never reaches the cache", []string{"write-through"}, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		w := e.open(t, k)
		id := e.id("p")
		require.NoError(t, w.Put(ctx, Product{ID: id, Name: "v1", PriceCents: 100}))
		refused := Product{ID: id, Name: "refused", PriceCents: -1} // CHECK (price_cents >= 0)
		require.ErrorIs(t, w.Put(ctx, refused), ErrRejected)
		got, err := w.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "v1", got.Name)

		cacheFirst := func(p Product) error { // the article's order
			if err := newCache(e.cfg).overwrite(ctx, p); err != nil {
				return err
			}
			_, err := e.db.Put(ctx, p)
			return err
		}
		require.ErrorIs(t, cacheFirst(refused), ErrRejected)
		got, err = w.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "refused", got.Name, "cache first: readers see a write that never committed")
		assert.Equal(t, "v1", e.committed(t, id).Name)
	}},
}

var writeAroundCases = []suiteCase{
	{"a write leaves the cache alone and the first read fills it", []string{"write-around"}, func(t *testing.T, e *env, k kind) {
		ctx := context.Background()
		w := e.open(t, k)
		id := e.id("log-1")
		require.NoError(t, w.Put(ctx, Product{ID: id, Name: "entry"}))
		_, ok := e.cached(t, id)
		assert.False(t, ok, "write-around filled the cache on write")
		_, err := w.Get(ctx, id)
		require.NoError(t, err)
		_, ok = e.cached(t, id)
		assert.True(t, ok, "the first read did not fill the cache")
	}},
}

func withoutVersion(p Product) Product {
	p.Version = 0
	return p
}
