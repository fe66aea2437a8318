//go:build integration

package redislimit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/middleware"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

// TestFaultPausedRedis stalls the stack's Redis (paused: connections open,
// nothing answers) under the limiter.
//
//   - A client that does not apply context deadlines (go-redis's default,
//     ContextTimeoutEnabled false, ReadTimeout 3 s): the rule's 100 ms
//     Timeout still answers at once, 503 on a fail-closed route. It used to
//     take 5 s.
//   - A client that retries (go-redis's default MaxRetries 3) is refused by
//     New: a check whose reply was late was sent again, and when Redis woke
//     both ran: one request counted twice. Without retries, a check stalled
//     past its read timeout is counted at most once.
func TestFaultPausedRedis(t *testing.T) {
	stack.Require(t, stack.Redis)
	p := quota.Policy{Limit: 10, Window: time.Minute}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	deaf := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), MaxRetries: -1})
	t.Cleanup(func() { _ = deaf.Close() })
	l, err := redislimit.New(deaf, redislimit.GCRA, p, prefix(t, redislimit.GCRA))
	require.NoError(t, err)
	require.NoError(t, l.Load(ctx))
	srv := httptest.NewServer(middleware.New(nil, nil).Limit(middleware.Rule{Name: "hello", Limiter: l, OnError: middleware.FailClosed, Timeout: 100 * time.Millisecond},
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	t.Cleanup(srv.Close)
	stack.Pause(t, "redis")
	start := time.Now()
	resp, err := srv.Client().Get(srv.URL)
	took := time.Since(start)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Less(t, took, 2*time.Second, "the rule's 100 ms Timeout, not the client's 3 s ReadTimeout")
	stack.Resume(t, "redis")

	retrying := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = retrying.Close() })
	_, err = redislimit.New(retrying, redislimit.FixedWindow, p, prefix(t, redislimit.FixedWindow))
	assert.ErrorContains(t, err, "MaxRetries", "a client that resends a check is refused")

	once := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), ReadTimeout: 200 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = once.Close() })
	l, err = redislimit.New(once, redislimit.FixedWindow, p, prefix(t, redislimit.FixedWindow))
	require.NoError(t, err)
	require.NoError(t, l.Load(ctx))
	stack.Pause(t, "redis")
	resumed := make(chan struct{})
	go func() { // not stack.Resume: only the test goroutine may fail the test
		defer close(resumed)
		time.Sleep(450 * time.Millisecond)
	}()
	_, err = l.Allow(ctx, "c")
	assert.Error(t, err, "the check timed out at 200 ms")
	<-resumed
	stack.Resume(t, "redis")
	d, err := l.Allow(ctx, "c")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, d.Remaining, p.Limit-2, "the stalled check counted at most once (8 left after it and this one)")
}
