//go:build integration

package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// stackRedis connects to the stack's Redis with the options the limiter
// needs (LimiterOptions).
func stackRedis(t *testing.T) *redis.Client {
	t.Helper()
	stack.Require(t, stack.Redis)
	rdb := redis.NewClient(LimiterOptions(redis.Options{Addr: stack.RedisAddr()}))
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// runPrefix keeps concurrent and repeated runs apart on a shared Redis.
func runPrefix(t *testing.T) string {
	return fmt.Sprintf("part02:test:%s:%d:", t.Name(), time.Now().UnixNano())
}

func TestFixedWindowOnRedis(t *testing.T) {
	rdb := stackRedis(t)
	prefix := runPrefix(t)
	fixedWindowContract(t, rdb, prefix, time.Minute, expireBy(rdb, prefix))
}

// expireBy moves the fixed windows under prefix d into their future: each
// key's TTL shrinks by d and a key whose TTL runs out is deleted, which is
// all that time does to a fixed window. Real Redis has no clock a test can
// move; sleeping instead (with a 1 s window) left the four checks between
// 0.9 s and 1 s of a window 100 ms of real time, which a slow machine missed.
func expireBy(rdb *redis.Client, prefix string) func(*testing.T, time.Duration) {
	return func(t *testing.T, d time.Duration) {
		keys, err := rdb.Keys(t.Context(), prefix+"*").Result()
		require.NoError(t, err)
		for _, k := range keys {
			ttl, err := rdb.PTTL(t.Context(), k).Result()
			require.NoError(t, err)
			switch {
			case ttl < 0: // gone meanwhile, or no expiry: time changes nothing
			case ttl <= d:
				require.NoError(t, rdb.Del(t.Context(), k).Err())
			default:
				require.NoError(t, rdb.PExpire(t.Context(), k, ttl-d).Err())
			}
		}
	}
}

// Many goroutines, one key, real Redis: exactly Limit pass (INCR in a
// script is atomic; no read-then-write window).
func TestFixedWindowUnderConcurrencyOnRedis(t *testing.T) {
	rdb := stackRedis(t)
	f := &FixedWindow{Client: rdb, Limit: 50, Window: time.Minute, Prefix: runPrefix(t), Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 20 {
		wg.Go(func() {
			for range 10 {
				d, err := f.Allow(t.Context(), "hot")
				if assert.NoError(t, err) && d.Allowed {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 50, passed)
}

// TestFaultRedisKilledAndPaused kills, then pauses, the stack's Redis under
// the two policies. Killed: fail-open serves every request (and reports
// each error), fail-closed answers 503 + Retry-After: 1; after a restart
// both limit again. Paused (accepts, never answers): each check gives up
// after the limiter's Timeout instead of go-redis's 3 s ReadTimeout.
func TestFaultRedisKilledAndPaused(t *testing.T) {
	rdb := stackRedis(t)
	prefix := runPrefix(t)
	var errs sync.Map
	// Checks of a healthy Redis get 10 s: with the 200 ms the paused phase
	// shows, a loaded machine's slow answer failed open or closed in the
	// phases that count. The only test goroutine calls, so the field can
	// change between phases.
	var limiters []*FixedWindow
	mw := func(p Policy) (*Middleware, http.Handler) {
		f := &FixedWindow{Client: rdb, Limit: 3, Window: time.Minute, Prefix: prefix + p.String() + ":", Timeout: 10 * time.Second}
		limiters = append(limiters, f)
		m := &Middleware{
			Limiter: f,
			OnError: p,
			Errors:  func(err error) { errs.Store(err.Error(), true) },
		}
		return m, m.Wrap(ok)
	}
	open, openH := mw(FailOpen)
	closed, closedH := mw(FailClosed)
	codes := func(h http.Handler, n int) []int {
		var out []int
		for range n {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req("198.51.100.7:1"))
			out = append(out, w.Code)
			if w.Code == http.StatusServiceUnavailable {
				assert.Equal(t, "1", w.Header().Get("Retry-After"))
			}
		}
		return out
	}
	assert.Equal(t, []int{200, 200, 200, 429, 429}, codes(openH, 5), "healthy: limited")
	assert.Equal(t, []int{200, 200, 200, 429, 429}, codes(closedH, 5), "healthy: limited")

	stack.Kill(t, "redis")
	assert.Equal(t, []int{200, 200, 200, 200, 200}, codes(openH, 5), "fail-open: served, over the limit")
	assert.Equal(t, []int{503, 503, 503}, codes(closedH, 3), "fail-closed: refused")
	_, _, failedOpen := open.Counts()
	_, _, failedClosed := closed.Counts()
	assert.Equal(t, [2]int64{5, 3}, [2]int64{failedOpen, failedClosed}, "every failed check is counted")
	n := 0
	errs.Range(func(k, _ any) bool { n++; t.Logf("limiter error: %s", k); return true })
	assert.Positive(t, n, "and reported")

	stack.Restart(t, "redis")
	require.Eventually(t, func() bool { return rdb.Ping(t.Context()).Err() == nil }, 30*time.Second, 50*time.Millisecond)
	// The counts died with the process (no persistence), so each window starts afresh.
	assert.Equal(t, []int{200, 200, 200, 429}, codes(openH, 4), "limiting again after the restart")
	assert.Equal(t, []int{200, 200, 200, 429}, codes(closedH, 4))

	for _, f := range limiters {
		f.Timeout = 200 * time.Millisecond
	}
	stack.Pause(t, "redis")
	start := time.Now()
	assert.Equal(t, []int{503, 503}, codes(closedH, 2), "paused: fail-closed refuses")
	assert.Equal(t, []int{200, 200}, codes(openH, 2), "paused: fail-open serves")
	took := time.Since(start) / 4
	assert.Less(t, took, 2*time.Second, "each check bounded near its 200 ms Timeout, not the 3 s ReadTimeout")
	t.Logf("a check against a paused Redis took %v on average", took)
	stack.Resume(t, "redis")
}

// latency adds d to every command, as a loaded machine or a Redis across a
// network does.
type latency time.Duration

func (latency) DialHook(next redis.DialHook) redis.DialHook { return next }
func (d latency) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		time.Sleep(time.Duration(d))
		return next(ctx, cmd)
	}
}
func (d latency) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		time.Sleep(time.Duration(d))
		return next(ctx, cmds)
	}
}

// The contract does not depend on how fast the machine is: the same checks
// with 30 ms per round trip.
func TestFixedWindowOnASlowRedis(t *testing.T) {
	rdb := stackRedis(t)
	require.NoError(t, fixedWindow.Load(t.Context(), rdb).Err()) // one round trip per check
	rdb.AddHook(latency(30 * time.Millisecond))
	prefix := runPrefix(t)
	fixedWindowContract(t, rdb, prefix, time.Minute, expireBy(rdb, prefix))
}

// Erratum 12 on the stack's Redis: EXPIRE 0 deletes the key there too, and
// 20 of 20 requests pass a limit of 2 per 500 ms.
func TestArticleSubSecondWindowOnRedis(t *testing.T) {
	assert.Equal(t, 20, articleSubSecond(t, stackRedis(t), runPrefix(t)))
}

// Erratum 13: the article's limiter returns (true, nil) on any Redis error,
// and with go-redis's default options it has no bound of its own: killed,
// the check waits out the dial retries; paused, the 3 s ReadTimeout. The
// caller sees a normal "allowed" either way, and cannot log, count or
// overrule it. (TestFaultRedisKilledAndPaused: this package's limiter
// returns the error within its Timeout and the middleware applies a policy.)
func TestFaultArticleFailsOpenSilently(t *testing.T) {
	stack.Require(t, stack.Redis)
	rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr()}) // go-redis's defaults, as the article's caller has them
	t.Cleanup(func() { rdb.Close() })
	key := runPrefix(t)
	check := func(state string) {
		start := time.Now()
		ok, err := articleAllow(t.Context(), rdb, key, 1, time.Minute)
		took := time.Since(start)
		assert.True(t, ok, "%s: allowed", state)
		assert.NoError(t, err, "%s: and no error for the caller to see", state)
		t.Logf("%s: (true, nil) after %v", state, took.Round(10*time.Millisecond))
	}
	ok, err := articleAllow(t.Context(), rdb, key, 1, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	ok, _ = articleAllow(t.Context(), rdb, key, 1, time.Minute)
	require.False(t, ok, "healthy: the second request is over the limit of 1")
	stack.Kill(t, "redis")
	check("killed")
	stack.Restart(t, "redis")
	stack.Pause(t, "redis")
	check("paused")
	stack.Resume(t, "redis")
}
