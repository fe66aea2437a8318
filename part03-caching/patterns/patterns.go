package patterns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-masterclass/golang/part03-caching/stampede"
)

// Pattern is what the five patterns share, so that one can replace another (and the
// chapter's experiment and tests loop over all five). They differ in what Put
// touches, when it returns, and what a crash can lose; see the package doc.
type Pattern interface {
	// Put writes p. Invalid products are ErrInvalid and reach neither the cache nor
	// the database. On nil, p is in the database, except with WriteBehind, where it
	// is buffered (see its guarantees).
	Put(ctx context.Context, p Product) error
	// Get returns the product, ErrNotFound, or ErrInvalid for a malformed ID.
	Get(ctx context.Context, id string) (Product, error)
}

var (
	_ Pattern = (*CacheAside)(nil)
	_ Pattern = (*ReadThrough)(nil)
	_ Pattern = (*WriteThrough)(nil)
	_ Pattern = (*WriteBehind)(nil)
	_ Pattern = (*WriteAround)(nil)
)

// CacheAside is the application talking to both the cache and the database: the
// default for read-heavy APIs. Reads fill the cache on a miss; writes go to the
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

// Put writes the database, then deletes the cached key.
func (a *CacheAside) Put(ctx context.Context, p Product) error {
	return writeThenDelete(ctx, a.c, a.db, p)
}

// writeThenDelete is the write half of cache-aside and read-through. When the delete
// fails the write has still happened: the error says the cache may serve the old
// value until its TTL.
func writeThenDelete(ctx context.Context, c cache, db Store, p Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := db.Put(ctx, p); err != nil {
		return err
	}
	if err := c.del(ctx, p.ID); err != nil {
		return fmt.Errorf("patterns: stored, but cache invalidation failed (stale up to TTL): %w", err)
	}
	return nil
}

// ReadThrough is a cache that loads missing entries itself: readers see only the
// cache, never the database. Concurrent misses of one key share one load
// (stampede.Group), which a read-through component can do for every caller at once.
// Writes go to the database and delete the key, as with cache-aside.
type ReadThrough struct {
	c       cache
	db      Store
	group   stampede.Group[Product]
	timeout time.Duration
}

// NewReadThrough returns a read-through cache over db.
func NewReadThrough(cfg Config, db Store) *ReadThrough {
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 5 * time.Second
	}
	return &ReadThrough{c: newCache(cfg), db: db, timeout: cfg.LoadTimeout}
}

// Get returns the cached product, loading it once per key on concurrent misses.
func (r *ReadThrough) Get(ctx context.Context, id string) (Product, error) {
	if err := ValidateID(id); err != nil {
		return Product{}, err
	}
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
		return r.c.loadAndFill(ctx, id, r.db.Get)
	})
}

// Put writes the database, then deletes the cached key.
func (r *ReadThrough) Put(ctx context.Context, p Product) error {
	return writeThenDelete(ctx, r.c, r.db, p)
}

// WriteThrough writes the database and then the cache, synchronously, before
// returning: reads right after a write hit the cache with the new value, at the price
// of both round trips on every write. For data that must not be stale (the article:
// financial records). Reads are read-through.
type WriteThrough struct {
	*ReadThrough
}

// NewWriteThrough returns a write-through cache over db.
func NewWriteThrough(cfg Config, db Store) *WriteThrough {
	return &WriteThrough{ReadThrough: NewReadThrough(cfg, db)}
}

// Put writes p to the database, then caches the stored version (compare-and-set on
// the version, so concurrent writers converge on the newest). The database comes
// first: a write it refuses must not be visible in the cache. If the cache write
// fails the key is deleted, so no reader sees the previous value; if that fails too
// the error says so.
func (w *WriteThrough) Put(ctx context.Context, p Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p, err := w.db.Put(ctx, p)
	if err != nil {
		return err
	}
	if err := w.c.put(ctx, p); err != nil {
		if derr := w.c.del(ctx, p.ID); derr != nil {
			return fmt.Errorf("patterns: stored, but cache holds the previous value (stale up to TTL): %w", errors.Join(err, derr))
		}
	}
	return nil
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
func (w *WriteAround) Put(ctx context.Context, p Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	_, err := w.db.Put(ctx, p)
	return err
}

// Get reads cache-aside.
func (w *WriteAround) Get(ctx context.Context, id string) (Product, error) {
	return w.c.lookup(ctx, id, w.db.Get)
}
