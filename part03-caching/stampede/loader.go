package stampede

import (
	"context"
	"sync/atomic"
	"time"
)

// Entry is a cached value plus what XFetch needs to decide on an early refresh.
type Entry[V any] struct {
	Value  V
	Delta  time.Duration // how long the recompute that produced Value took
	Expiry time.Time     // logical expiry; the store may keep the entry longer (see Loader.StaleFor)
}

// Store holds entries. RedisStore and MapStore implement it.
type Store[V any] interface {
	// Get returns the entry for key, ok=false when there is none.
	Get(ctx context.Context, key string) (e Entry[V], ok bool, err error)
	// Set stores e; keep is how long the store should retain it (logical TTL + stale grace).
	Set(ctx context.Context, key string, e Entry[V], keep time.Duration) error
}

// Loader reads through a Store with optional stampede protection:
//
//   - Group set: concurrent misses (and concurrent early refreshes) of a key run one fetch;
//   - XFetch set: a request may refresh a valid entry before it expires;
//   - StaleFor > 0: when a refresh fails, the last value is served for up to StaleFor
//     past its expiry instead of the error.
//
// With neither Group nor XFetch it is a plain TTL cache: every request that finds the
// entry expired calls the backend. Fields must not change after first use.
type Loader[V any] struct {
	Store    Store[V]
	TTL      time.Duration    // logical lifetime of a fresh entry
	StaleFor time.Duration    // how long past expiry a value may still be served if refreshing fails
	Timeout  time.Duration    // bound on one fetch and on a caller's wait for a shared one; 0 = none
	Group    *Group[V]        // nil: no deduplication
	XFetch   *XFetch          // nil: no early refresh
	Now      func() time.Time // nil: time.Now; tests inject a clock

	hits, misses, early, stale, storeErrs atomic.Int64
}

// LoaderStats counts what a Loader did.
type LoaderStats struct {
	Hits           int64 // served from the store without a refresh
	Misses         int64 // absent or expired entries
	EarlyRefreshes int64 // XFetch decisions to refresh a still-valid entry
	StaleServed    int64 // refresh failed, old value served instead
	StoreErrors    int64 // store reads or writes that failed (the request went on without the cache)
}

// Stats returns the counters.
func (l *Loader[V]) Stats() LoaderStats {
	return LoaderStats{
		Hits:           l.hits.Load(),
		Misses:         l.misses.Load(),
		EarlyRefreshes: l.early.Load(),
		StaleServed:    l.stale.Load(),
		StoreErrors:    l.storeErrs.Load(),
	}
}

// Get returns the value for key, calling fetch when the entry is absent, expired, or
// chosen for early refresh. A store error is treated as a miss: the backend is still
// protected by Group, and a cache outage does not become an outage of the service.
func (l *Loader[V]) Get(ctx context.Context, key string, fetch func(context.Context) (V, error)) (V, error) {
	now := l.now()
	e, ok, err := l.Store.Get(ctx, key)
	if err != nil {
		l.storeErrs.Add(1)
		ok = false
	}
	var seen *Entry[V] // what prompted the refresh, if anything
	if ok {
		seen = &e
	}
	if ok && now.Before(e.Expiry) {
		if l.XFetch == nil || !l.XFetch.ShouldRefresh(now, e.Delta, e.Expiry) {
			l.hits.Add(1)
			return e.Value, nil
		}
		l.early.Add(1)
		v, err := l.refresh(ctx, key, fetch, seen)
		if err != nil {
			l.stale.Add(1) // the entry is still valid: a failed early refresh costs nothing
			return e.Value, nil
		}
		return v, nil
	}
	l.misses.Add(1)
	v, err := l.refresh(ctx, key, fetch, seen)
	if err != nil && ok && now.Before(e.Expiry.Add(l.StaleFor)) {
		l.stale.Add(1)
		return e.Value, nil
	}
	return v, err
}

// refresh recomputes key. seen is the entry that prompted it (nil if there was none).
func (l *Loader[V]) refresh(ctx context.Context, key string, fetch func(context.Context) (V, error), seen *Entry[V]) (V, error) {
	compute := func(ctx context.Context) (V, error) {
		start := l.now()
		v, err := fetch(ctx)
		if err != nil {
			return v, err
		}
		done := l.now()
		e := Entry[V]{Value: v, Delta: done.Sub(start), Expiry: done.Add(l.TTL)}
		if err := l.Store.Set(ctx, key, e, l.TTL+l.StaleFor); err != nil {
			l.storeErrs.Add(1)
		}
		return v, nil
	}
	if l.Group != nil {
		return l.Group.Do(ctx, key, l.Timeout, func(ctx context.Context) (V, error) {
			// A caller that read the store just before the previous flight finished
			// and reached the Group just after it ended would start a second flight:
			// the leader re-reads the store and fetches only if nobody has replaced
			// the entry that prompted this refresh.
			if cur, ok, err := l.Store.Get(ctx, key); err == nil && ok && l.now().Before(cur.Expiry) &&
				(seen == nil || cur.Expiry.After(seen.Expiry)) {
				return cur.Value, nil
			}
			return compute(ctx)
		})
	}
	if l.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Timeout)
		defer cancel()
	}
	return compute(ctx)
}

func (l *Loader[V]) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}
