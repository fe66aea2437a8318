package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

// The article's sweeper goroutine, started by TestArticleSweeperLeaksAndPanics
// to show that nothing can stop it, is the one goroutine allowed to outlive
// the tests.
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/sysdesign-masterclass/golang/part02-loadbalancing/ratelimit.(*articleSweeper).cleanupLoop"))
}

func newPerClient(t *testing.T, c PerClientConfig) *PerClient {
	t.Helper()
	l, err := NewPerClient(c)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func allow(t *testing.T, l Limiter, key string) Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), key)
	require.NoError(t, err)
	return d
}

// The article's formula, tokens = min(capacity, tokens + r·Δt), in fake
// time: a burst of 5 passes, the 6th waits 1/r; tokens come back at r per
// second, and never above the capacity however long the client is idle.
func TestTokenBucketRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newPerClient(t, PerClientConfig{Rate: 2, Burst: 5})
		for i := range 5 {
			d := allow(t, l, "c")
			require.True(t, d.Allowed, "request %d of the burst", i+1)
			assert.Equal(t, int64(4-i), d.Remaining)
			assert.Equal(t, int64(5), d.Limit)
		}
		d := allow(t, l, "c")
		assert.False(t, d.Allowed)
		assert.Equal(t, 500*time.Millisecond, d.RetryAfter, "one token at 2/s is 500 ms away")
		assert.False(t, allow(t, l, "c").Allowed, "a denied request costs no token")

		time.Sleep(time.Second) // r·Δt = 2 tokens
		assert.True(t, allow(t, l, "c").Allowed)
		assert.True(t, allow(t, l, "c").Allowed)
		assert.False(t, allow(t, l, "c").Allowed)

		time.Sleep(time.Hour) // min(capacity, …): 5, not 7,200
		n := 0
		for allow(t, l, "c").Allowed {
			n++
		}
		assert.Equal(t, 5, n)
		assert.True(t, allow(t, l, "other").Allowed, "each client has its own bucket")
	})
}

// The sweeper forgets a client idle for TTL and keeps an active one; with
// TTL ≥ Burst/Rate a forgotten client comes back to the full bucket it
// would have had anyway.
func TestSweeperForgetsIdleClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newPerClient(t, PerClientConfig{Rate: 1, Burst: 10, TTL: time.Minute})
		for i := range 100 {
			allow(t, l, fmt.Sprint("idle-", i))
		}
		for range 4 { // 40 s, active every 10 s
			allow(t, l, "active")
			time.Sleep(10 * time.Second)
		}
		for range 8 {
			allow(t, l, "active")
			time.Sleep(10 * time.Second)
			synctest.Wait() // the sweeper runs every 30 s
		}
		assert.Equal(t, 1, l.Len(), "only the active client is left")
		for range 10 {
			assert.True(t, allow(t, l, "idle-0").Allowed, "a forgotten client starts with a full bucket, as it would have")
		}
		assert.False(t, allow(t, l, "idle-0").Allowed)
	})
}

// A flood of distinct keys (spoofed headers, a whole IPv6 range) cannot
// grow the map past MaxClients: the least recently seen of a sample goes.
func TestMemoryIsBounded(t *testing.T) {
	l := newPerClient(t, PerClientConfig{Rate: 1, Burst: 1, MaxClients: 100})
	for i := range 10_000 {
		allow(t, l, fmt.Sprint("flood-", i))
	}
	assert.Equal(t, 100, l.Len())
	assert.Equal(t, int64(9_900), l.Evicted())
}

// The article's getLimiter creates a bucket after a miss without looking
// again under the write lock, so a new client's concurrent first requests
// each get a bucket. Here 8 goroutines hit each of 200 new keys at once,
// and every key passes exactly its burst (3), no more. The rate is so low
// that nothing refills during the test.
func TestConcurrentFirstRequestsShareOneBucket(t *testing.T) {
	l := newPerClient(t, PerClientConfig{Rate: 0.001, Burst: 3})
	for k := range 200 {
		key := fmt.Sprint("new-", k)
		var allowed sync.WaitGroup
		var mu sync.Mutex
		n := 0
		startGun := make(chan struct{})
		for range 8 {
			allowed.Go(func() {
				<-startGun
				d, err := l.Allow(t.Context(), key)
				if assert.NoError(t, err) && d.Allowed {
					mu.Lock()
					n++
					mu.Unlock()
				}
			})
		}
		close(startGun)
		allowed.Wait()
		require.Equal(t, 3, n, "%s: exactly one bucket", key)
	}
}

// Requests, the sweeper and evictions all at once, under -race: the
// article's lastSeen write is a data race; this one is not.
func TestConcurrentUseIsRaceFree(t *testing.T) {
	l := newPerClient(t, PerClientConfig{Rate: 1000, Burst: 10, TTL: 10 * time.Millisecond, MaxClients: 50})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				l.Sweep(time.Now().Add(time.Hour))
			}
		}
	})
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				_, err := l.Allow(t.Context(), fmt.Sprint(g, "-", i%80))
				assert.NoError(t, err)
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	assert.LessOrEqual(t, l.Len(), 50)
}

func TestNewPerClientRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		c    PerClientConfig
		want string
	}{
		{PerClientConfig{Rate: 0, Burst: 1}, "rate 0 must be a positive"},
		{PerClientConfig{Rate: -1, Burst: 1}, "rate -1 must be a positive"},
		{PerClientConfig{Rate: rate.Inf, Burst: 1}, "must be a positive"},
		{PerClientConfig{Rate: 1, Burst: 0}, "burst 0"},
		{PerClientConfig{Rate: 1, Burst: 20, TTL: 10 * time.Second}, "TTL 10s is shorter than the 20s"},
		{PerClientConfig{Rate: 1, Burst: 1, MaxClients: -1}, "MaxClients -1"},
		// A bucket that refills in half a nanosecond passed the TTL check
		// with TTL 1 ns, and the sweeper panicked in time.NewTicker(0).
		{PerClientConfig{Rate: 2e9, Burst: 1, TTL: time.Nanosecond}, "TTL 1ns is under 1ms"},
		{PerClientConfig{Rate: 1, Burst: 1, TTL: -time.Second}, "TTL -1s is under 1ms"},
		// 20 tokens at 1e-9/s take 634 years to refill, more than a
		// time.Duration holds: the TTL check overflowed and let a 1-minute
		// TTL through (a fresh burst every minute), and at 1e-10/s a denied
		// request's RetryAfter came out negative (Retry-After: 1).
		{PerClientConfig{Rate: 1e-9, Burst: 20}, "takes longer to refill than"},
		{PerClientConfig{Rate: 1e-10, Burst: 1}, "takes longer to refill than"},
	} {
		_, err := NewPerClient(tt.c)
		assert.ErrorContains(t, err, tt.want)
	}
	// The article's NewPerClientRateLimiter(…, ttl = 0) panics in its
	// cleanup goroutine (time.NewTicker(0)); here 0 picks a default.
	l := newPerClient(t, PerClientConfig{Rate: 10, Burst: 20})
	assert.Equal(t, time.Minute, l.ttl)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close twice")
}
