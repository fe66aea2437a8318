//go:build integration

package ratelimit

import (
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
	fixedWindowContract(t, rdb, runPrefix(t), time.Sleep)
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
	mw := func(p Policy) (*Middleware, http.Handler) {
		m := &Middleware{
			Limiter: &FixedWindow{Client: rdb, Limit: 3, Window: time.Minute, Prefix: prefix + p.String() + ":", Timeout: 200 * time.Millisecond},
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

	stack.Pause(t, "redis")
	start := time.Now()
	assert.Equal(t, []int{503, 503}, codes(closedH, 2), "paused: fail-closed refuses")
	assert.Equal(t, []int{200, 200}, codes(openH, 2), "paused: fail-open serves")
	took := time.Since(start) / 4
	assert.Less(t, took, 2*time.Second, "each check bounded near its 200 ms Timeout, not the 3 s ReadTimeout")
	t.Logf("a check against a paused Redis took %v on average", took)
	stack.Resume(t, "redis")
}
