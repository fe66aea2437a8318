//go:build integration

package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/contract"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/redisstore"
)

// real connects to the stack's Redis and returns a store writing under a
// prefix unique to the test, deleted afterwards.
func real(t testing.TB) (*redis.Client, *redisstore.Store) {
	t.Helper()
	stack.Require(t, stack.Redis)
	rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr()})
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := prefix(t)
	t.Cleanup(func() {
		ctx := context.Background() // t.Context is cancelled while cleanups run
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if assert.NoError(t, err, "cleanup") && len(keys) > 0 {
			assert.NoError(t, rdb.Del(ctx, keys...).Err(), "cleanup")
		}
	})
	s := redisstore.New(rdb).WithPrefix(prefix)
	require.NoError(t, s.Preload(t.Context()))
	return rdb, s
}

// prefix is the key prefix of one test: its keys are deleted after it.
func prefix(t testing.TB) string { return fmt.Sprintf("part07-test:%s:", t.Name()) }

// TestContractOnRealRedis runs the same suite as on miniredis, against a real Redis in
// real time.
func TestContractOnRealRedis(t *testing.T) {
	_, s := real(t)
	contract.Run(t, contract.Harness{New: func(*testing.T) idempotency.Store { return s }})
}

// TestRoundTripsOnRealRedis checks the goals on the real server: 2 round
// trips for a first request, 1 for a replay, also for keys whose record
// already expired.
func TestRoundTripsOnRealRedis(t *testing.T) {
	rdb, s := real(t)
	var rt redisstore.RoundTrips
	rdb.AddHook(&rt)
	mw, err := idempotency.New(idempotency.Config{Store: s, RecordTTL: 200 * time.Millisecond})
	require.NoError(t, err)
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) }))
	post := func(key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/payments", strings.NewReader(`{"amount":100}`))
		req.Header.Set(idempotency.HeaderKey, key)
		req.Header.Set(idempotency.HeaderTenant, "acme")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, key := range []string{"a", "b", "c"} {
		rt.Reset()
		require.Equal(t, http.StatusCreated, post(key).Code)
		assert.Equal(t, int64(2), rt.Reset(), "first request")
		rec := post(key)
		require.Equal(t, "true", rec.Header().Get(idempotency.HeaderReplayed))
		assert.Equal(t, int64(1), rt.Reset(), "replay")
	}
	time.Sleep(300 * time.Millisecond) // the records expire
	rt.Reset()
	rec := post("a")
	require.Empty(t, rec.Header().Get(idempotency.HeaderReplayed), "expired: executes again")
	assert.Equal(t, int64(2), rt.Reset(), "first request after expiry")
}

// TestLateClaimClaimsNothingOnRealRedis: a claim that reaches the real Redis
// after its deadline is refused by Redis's own clock.
func TestLateClaimClaimsNothingOnRealRedis(t *testing.T) {
	rdb, _ := real(t)
	lateClaimClaimsNothing(t, rdb, prefix(t), func() (net.Conn, error) { return net.Dial("tcp", stack.RedisAddr()) }, 300*time.Millisecond)
}
