package stampede

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrTimeout is returned to a caller whose own wait exceeded the timeout passed to
// Group.Do. The shared fetch may still finish and serve the callers that are waiting.
var ErrTimeout = fmt.Errorf("stampede: wait for shared fetch timed out: %w", context.DeadlineExceeded)

// Group deduplicates concurrent fetches of the same key: while one fetch for a key is
// in flight, later callers wait for its result instead of starting their own.
//
// Unlike a bare singleflight.Group.Do, a caller can give up (its ctx ends or its
// timeout passes) without cancelling the fetch the others are waiting for: the fetch
// runs under context.WithoutCancel of the first caller's ctx, bounded by that caller's
// timeout, so it neither dies with its first caller nor runs forever.
//
// The zero value is ready to use. A Group must not be copied after first use.
type Group[V any] struct {
	g singleflight.Group

	calls    atomic.Int64
	shared   atomic.Int64
	timeouts atomic.Int64
	canceled atomic.Int64

	// The fast path keeps two atomic adds per call instead of three: Waiting
	// and its share of Executions are derived. A fast-path call that nobody
	// shared with was the leader (x/sync's Do runs fn on the caller's
	// goroutine), so it counts once, in fastSolo, for "returned" and
	// "executed" both. Fast-path callers in flight are
	// calls − slowCalls − fastSolo − fastShared.
	slowCalls         atomic.Int64 // calls that took DoChan
	slowExecutions    atomic.Int64 // fetches the DoChan path ran
	fastSolo          atomic.Int64 // fast-path calls that returned unshared (each ran its fetch)
	fastShared        atomic.Int64 // fast-path calls that returned shared
	fastSharedLeaders atomic.Int64 // of those, the ones that ran the fetch
	slowWaiting       atomic.Int64 // DoChan callers registered and not yet returned
}

// Stats is a snapshot of a Group's counters.
type Stats struct {
	Calls      int64 // calls to Do
	Executions int64 // fetches actually run: Calls − Executions is what deduplication saved
	Shared     int64 // callers whose result was shared with another caller (singleflight's Result.Shared; the leader counts too)
	Timeouts   int64 // callers that returned ErrTimeout
	Canceled   int64 // callers whose ctx ended first
	Waiting    int64 // callers waiting right now (a gauge, not a counter)
}

// Stats returns the counters. Each field is read atomically; the set is not a
// consistent snapshot while calls are in flight.
func (g *Group[V]) Stats() Stats {
	// Monotonic counters first, calls last: a call that starts meanwhile can only
	// make Waiting read high for an instant, never negative.
	solo, shared, leaders := g.fastSolo.Load(), g.fastShared.Load(), g.fastSharedLeaders.Load()
	slowCalls, slowExecutions := g.slowCalls.Load(), g.slowExecutions.Load()
	slowWaiting := g.slowWaiting.Load()
	calls := g.calls.Load()
	return Stats{
		Calls:      calls,
		Executions: slowExecutions + solo + leaders,
		Shared:     g.shared.Load(),
		Timeouts:   g.timeouts.Load(),
		Canceled:   g.canceled.Load(),
		Waiting:    slowWaiting + calls - slowCalls - solo - shared,
	}
}

// Do returns the result of fetch for key, running fetch at most once among concurrent
// callers of the same key. It is the article's GetOrFetch(ctx, id, timeout, fetch)
// with the data race removed.
//
// The caller waits until the result arrives, ctx ends (ctx.Err() is returned) or
// timeout passes (ErrTimeout); timeout ≤ 0 means no timeout of its own. fetch gets a
// context that keeps ctx's values but not its cancellation, with the leader's timeout
// as deadline. A panic in fetch crashes the program, as with singleflight.DoChan.
//
// When there is nothing to walk away on (timeout ≤ 0 and ctx.Done() == nil, as with
// context.Background()), Do takes singleflight's blocking Do: no goroutine, channel
// or timer per flight, and the leader runs fetch itself.
func (g *Group[V]) Do(ctx context.Context, key string, timeout time.Duration, fetch func(context.Context) (V, error)) (V, error) {
	g.calls.Add(1)
	if timeout <= 0 && ctx.Done() == nil {
		// The fast path, written out here rather than called: ctx cannot end,
		// so there is nothing to select on and no cancellation to strip, and
		// fetch runs on the leader's own goroutine, which is how led (a
		// variable on this stack, no atomic) tells the leader of a shared
		// flight. A caller counts as Waiting from its call to Do until it
		// returns.
		led := false
		v, err, shared := g.g.Do(key, func() (any, error) {
			led = true
			return fetch(ctx)
		})
		if !shared {
			g.fastSolo.Add(1)
		} else {
			if led {
				g.fastSharedLeaders.Add(1)
			}
			g.fastShared.Add(1)
		}
		return g.result(v, err, shared)
	}
	g.slowCalls.Add(1)
	var zero V
	if err := ctx.Err(); err != nil {
		g.canceled.Add(1)
		return zero, err
	}
	ch := g.g.DoChan(key, func() (any, error) {
		g.slowExecutions.Add(1)
		fctx := context.WithoutCancel(ctx)
		if timeout > 0 {
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(fctx, timeout)
			defer cancel()
		}
		return fetch(fctx)
	})
	// DoChan has registered this caller by now, so Waiting counts only callers that
	// are certain to receive this flight's result.
	g.slowWaiting.Add(1)
	defer g.slowWaiting.Add(-1)

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case r := <-ch:
		return g.result(r.Val, r.Err, r.Shared)
	case <-ctx.Done():
		g.canceled.Add(1)
		return zero, ctx.Err()
	case <-expired:
		g.timeouts.Add(1)
		return zero, ErrTimeout
	}
}

func (g *Group[V]) result(v any, err error, shared bool) (V, error) {
	if shared {
		g.shared.Add(1)
	}
	if err != nil {
		var zero V
		return zero, err
	}
	val, _ := v.(V) // a nil interface V comes back as a nil any
	return val, nil
}

// Forget makes the next Do for key start a new fetch even if one is in flight, for
// when the caller knows the in-flight result is already stale (after a write).
func (g *Group[V]) Forget(key string) { g.g.Forget(key) }
