//go:build integration

package redislimit_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
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
//   - A client that retries (go-redis's default MaxRetries 3): a check whose
//     reply was late used to be sent again, and when Redis woke both ran:
//     one request counted twice. The limiter's commands are marked NoRetry,
//     so a check stalled past its read timeout is counted at most once,
//     whatever the client's options (TestFaultPausedClusterNode has the
//     cluster client, which retried even with MaxRetries left alone).
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

	retrying := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), ReadTimeout: 200 * time.Millisecond}) // MaxRetries 3
	t.Cleanup(func() { _ = retrying.Close() })
	l, err = redislimit.New(retrying, redislimit.FixedWindow, p, prefix(t, redislimit.FixedWindow))
	require.NoError(t, err)
	require.NoError(t, l.Load(ctx))
	stalledOnce(ctx, t, l, "redis")
}

// stalledOnce pauses svc, makes one check, resumes svc 450 ms later while
// the check may still be going (its first attempt times out at 200 ms; a
// retrying client is then waiting to set up a new connection), and checks
// that the stalled check counted at most once. Every copy of the command
// written to the paused server runs when it wakes.
func stalledOnce(ctx context.Context, t *testing.T, l *redislimit.Limiter, svc string) {
	t.Helper()
	stack.Pause(t, svc)
	done := make(chan error, 1)
	go func() {
		_, err := l.Allow(ctx, "c")
		done <- err
	}()
	time.Sleep(450 * time.Millisecond)
	stack.Resume(t, svc)
	select {
	case err := <-done:
		t.Logf("the stalled check: %v", err)
	case <-ctx.Done():
		require.FailNow(t, "the stalled check never returned")
	}
	d, err := l.Allow(ctx, "c")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, d.Remaining, l.Policy().Limit-2, "the stalled check counted at most once (8 left after it and this one)")
}

// TestFaultPausedClusterNode stalls the master of the checked key's slot on
// the stack's Redis Cluster. A ClusterClient with its defaults (MaxRetries
// 0, but MaxRedirects 3, which also bounds resends after a read timeout)
// sent the check four times, and all four ran when the node woke: one
// request spent four units of the client's quota.
func TestFaultPausedClusterNode(t *testing.T) {
	stack.Require(t, stack.RedisCluster)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs(), ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = cc.Close() })
	p := quota.Policy{Limit: 10, Window: time.Minute}
	l, err := redislimit.New(cc, redislimit.FixedWindow, p, prefix(t, redislimit.FixedWindow))
	require.NoError(t, err)
	require.NoError(t, l.Load(ctx))
	master, err := cc.MasterForKey(ctx, l.Key("c"))
	require.NoError(t, err)
	i := slices.IndexFunc(stack.RedisClusterAddrs(), func(a string) bool { return samePort(a, master.Options().Addr) })
	require.NotEqual(t, -1, i, "the key's master %s is one of %v", master.Options().Addr, stack.RedisClusterAddrs())
	stalledOnce(ctx, t, l, fmt.Sprintf("redis-cluster-%d", i+1))
}

// samePort compares two host:port addresses by port: the cluster announces
// 127.0.0.1 where the configuration may say localhost.
func samePort(a, b string) bool {
	_, pa, errA := net.SplitHostPort(a)
	_, pb, errB := net.SplitHostPort(b)
	return errA == nil && errB == nil && pa == pb
}
