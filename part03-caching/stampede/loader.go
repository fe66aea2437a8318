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
//   - Group set: concurrent misses (and concurrent early refreshes) of a key run one
//     fetch in this process;
//   - Lock set: of all processes that refresh a key at once, one fetches and the others
//     serve the old value if they may, or wait for the new one (RedisLock);
//   - XFetch set: a request may refresh a valid entry before it expires;
//   - StaleFor > 0: when a refresh fails, the last value is served for up to StaleFor
//     past its expiry instead of the error.
//
// With none of Group, Lock and XFetch it is a plain TTL cache: every request that
// finds the entry expired calls the backend. Fields must not change after first use.
type Loader[V any] struct {
	Store    Store[V]
	TTL      time.Duration    // logical lifetime of a fresh entry
	StaleFor time.Duration    // how long past expiry a value may still be served if refreshing fails
	Timeout  time.Duration    // bound on one fetch and on a caller's wait for a shared one; 0 = none
	Group    *Group[V]        // nil: no deduplication within the process
	Lock     *RedisLock       // nil: no deduplication across processes
	XFetch   *XFetch          // nil: no early refresh
	Now      func() time.Time // nil: time.Now; tests inject a clock

	hits, misses, early, stale, storeErrs           atomic.Int64
	lockRebuilds, lockWaits, lockBusy, lockTimeouts atomic.Int64
}

// LoaderStats counts what a Loader did.
type LoaderStats struct {
	Hits           int64 // served from the store without a refresh
	Misses         int64 // absent or expired entries
	EarlyRefreshes int64 // XFetch decisions to refresh a still-valid entry
	StaleServed    int64 // refresh failed, old value served instead
	StoreErrors    int64 // store (or lock) reads and writes that failed (the request went on without them)
	LockRebuilds   int64 // fetches run while holding the cross-process lock
	LockWaits      int64 // refreshes that waited for another process's rebuild and got it
	LockBusy       int64 // refreshes that found another process rebuilding and served the old value at once
	LockTimeouts   int64 // refreshes that gave up after RedisLock.Wait (ErrLockWait)
}

// Stats returns the counters.
func (l *Loader[V]) Stats() LoaderStats {
	return LoaderStats{
		Hits:           l.hits.Load(),
		Misses:         l.misses.Load(),
		EarlyRefreshes: l.early.Load(),
		StaleServed:    l.stale.Load(),
		StoreErrors:    l.storeErrs.Load(),
		LockRebuilds:   l.lockRebuilds.Load(),
		LockWaits:      l.lockWaits.Load(),
		LockBusy:       l.lockBusy.Load(),
		LockTimeouts:   l.lockTimeouts.Load(),
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
	rebuild := func(ctx context.Context) (V, error) {
		if l.Lock != nil {
			return l.lockedCompute(ctx, key, fetch, seen)
		}
		return l.compute(ctx, key, fetch)
	}
	if l.Group != nil {
		return l.Group.Do(ctx, key, l.Timeout, func(ctx context.Context) (V, error) {
			// A caller that read the store just before the previous flight finished
			// and reached the Group just after it ended would start a second flight:
			// the leader re-reads the store and fetches only if nobody has replaced
			// the entry that prompted this refresh.
			if v, ok := l.refreshedMeanwhile(ctx, key, seen); ok {
				return v, nil
			}
			return rebuild(ctx)
		})
	}
	if l.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Timeout)
		defer cancel()
	}
	return rebuild(ctx)
}

// refreshedMeanwhile returns the stored value if it is valid and newer than seen (the
// entry that prompted this refresh; nil if there was none).
func (l *Loader[V]) refreshedMeanwhile(ctx context.Context, key string, seen *Entry[V]) (V, bool) {
	cur, ok, err := l.Store.Get(ctx, key)
	if err == nil && ok && l.now().Before(cur.Expiry) && (seen == nil || cur.Expiry.After(seen.Expiry)) {
		return cur.Value, true
	}
	var zero V
	return zero, false
}

// compute fetches key, measures δ and stores the entry.
func (l *Loader[V]) compute(ctx context.Context, key string, fetch func(context.Context) (V, error)) (V, error) {
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

func (l *Loader[V]) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}
