package patterns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-masterclass/golang/part03-caching/stampede"
)

// CacheAside is the application talking to both the cache and the database: the
// default for read-heavy APIs. Reads fill the cache on a miss; updates write the
// database and then delete the key ("invalidate, don't update").
//
// Why delete: two updates whose cache SETs land in the opposite order of their
// commits leave the older value cached until the TTL; a DEL is the same whatever the
// order. What remains is the classic race (a reader that loaded the old row before
// the update fills the cache after the DEL), bounded by the TTL.
type CacheAside struct {
	c  cache
	db Store
}

// NewCacheAside returns a cache-aside accessor for db.
func NewCacheAside(cfg Config, db Store) *CacheAside { return &CacheAside{c: newCache(cfg), db: db} }

// Get reads the cache, then the database on a miss, and fills the cache.
func (a *CacheAside) Get(ctx context.Context, id string) (Product, error) {
	return a.c.lookup(ctx, id, a.db.Get)
}

// Update writes the database, then deletes the cached key. The write has happened
// even when the delete fails: the error says the cache may serve the old value until
// its TTL.
func (a *CacheAside) Update(ctx context.Context, p Product) (Product, error) {
	p, err := a.db.Put(ctx, p)
	if err != nil {
		return Product{}, err
	}
	if err := a.c.del(ctx, p.ID); err != nil {
		return p, fmt.Errorf("patterns: updated, but cache invalidation failed (stale up to TTL): %w", err)
	}
	return p, nil
}

// Loader loads a product from the system of record.
type Loader func(ctx context.Context, id string) (Product, error)

// ReadThrough is a cache that loads missing entries itself: callers see only the
// cache, never the database. Concurrent misses of one key share one load
// (stampede.Group), which a read-through component can do for every caller at once.
type ReadThrough struct {
	c       cache
	load    Loader
	group   stampede.Group[Product]
	timeout time.Duration
}

// NewReadThrough returns a read-through cache over load. timeout bounds one load and
// each caller's wait for a shared one (0 = 5 s).
func NewReadThrough(cfg Config, load Loader, timeout time.Duration) *ReadThrough {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &ReadThrough{c: newCache(cfg), load: load, timeout: timeout}
}

// Get returns the cached product, loading it once per key on concurrent misses.
func (r *ReadThrough) Get(ctx context.Context, id string) (Product, error) {
	p, err := r.c.get(ctx, id)
	if err == nil || errors.Is(err, ErrNotFound) {
		return p, err
	}
	return r.group.Do(ctx, r.c.key(id), r.timeout, func(ctx context.Context) (Product, error) {
		// A caller that missed just before the previous flight filled the key, and
		// reached the group just after that flight ended, would start a second load:
		// the leader looks at the cache once more (one cache read per flight, not per
		// caller) and loads only if the key is still missing.
		if p, err := r.c.get(ctx, id); err == nil || errors.Is(err, ErrNotFound) {
			return p, err
		}
		return r.c.loadAndFill(ctx, id, r.load)
	})
}

// WriteThrough writes the database and then the cache, synchronously, before
// returning: reads right after a write hit the cache with the new value, at the price
// of both round trips on every write. For data that must not be stale (the article:
// financial records). Reads are read-through.
type WriteThrough struct {
	*ReadThrough
	db Store
}

// NewWriteThrough returns a write-through cache over db.
func NewWriteThrough(cfg Config, db Store) *WriteThrough {
	return &WriteThrough{ReadThrough: NewReadThrough(cfg, db.Get, 0), db: db}
}

// Put writes p to the database, then caches the stored version (compare-and-set on
// the version, so concurrent writers converge on the newest). If the cache write
// fails the key is deleted, so no reader sees the previous value; if that fails too
// the error says so.
func (w *WriteThrough) Put(ctx context.Context, p Product) (Product, error) {
	p, err := w.db.Put(ctx, p)
	if err != nil {
		return Product{}, err
	}
	if err := w.c.put(ctx, p); err != nil {
		if derr := w.c.del(ctx, p.ID); derr != nil {
			return p, fmt.Errorf("patterns: stored, but cache holds the previous value (stale up to TTL): %w", errors.Join(err, derr))
		}
	}
	return p, nil
}

// WriteAround writes only the database; the cache is filled by reads (cache-aside).
// Writes cost one round trip and do not push data nobody has asked for into the
// cache: for write-once data (logs, archives, new records read later, if ever).
// Updating a cached key this way leaves the old value served until the TTL.
type WriteAround struct {
	c  cache
	db Store
}

// NewWriteAround returns a write-around accessor for db.
func NewWriteAround(cfg Config, db Store) *WriteAround { return &WriteAround{c: newCache(cfg), db: db} }

// Put writes p to the database only.
func (w *WriteAround) Put(ctx context.Context, p Product) (Product, error) { return w.db.Put(ctx, p) }

// Get reads cache-aside.
func (w *WriteAround) Get(ctx context.Context, id string) (Product, error) {
	return w.c.lookup(ctx, id, w.db.Get)
}
