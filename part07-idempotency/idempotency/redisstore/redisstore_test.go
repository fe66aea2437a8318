package redisstore_test

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/contract"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/redisstore"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// bubbled returns a client of a miniredis that lives in the calling synctest
// bubble: no TCP listener (the client dials an in-memory pipe), and TTLs run
// on the bubble's fake clock.
func bubbled(t *testing.T) (*redis.Client, *miniredis.Miniredis) {
	t.Helper()
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	rdb := redis.NewClient(&redis.Options{
		Addr:   "127.0.0.1:6379", // an IP: go-redis resolves a host name in NewClient, outside the bubble's reach
		Dialer: func(context.Context, string, string) (net.Conn, error) { return m.Dial() },
	})
	t.Cleanup(func() {
		_ = rdb.Close()
		m.Close()
	})
	return rdb, m
}

// slowConn delays every write, as a stalled network or server does: the
// command reaches Redis after the caller's deadline.
type slowConn struct {
	net.Conn
	delay time.Duration
}

func (c slowConn) Write(p []byte) (int, error) {
	time.Sleep(c.delay)
	return c.Conn.Write(p)
}

// lateClaimClaimsNothing sends a Claim, then a Renew, that reach Redis after
// their deadline: Redis (by its own clock) refuses them, so a claim a stalled
// Redis runs after the caller gave up cannot block the key.
func lateClaimClaimsNothing(t *testing.T, rdb redis.UniversalClient, prefix string, dial func() (net.Conn, error), delay time.Duration) {
	t.Helper()
	slow := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:6379", // only a label: Dialer connects
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			c, err := dial()
			return slowConn{c, delay}, err
		},
		Protocol: 2, MaxRetries: -1, DisableIdentity: true, // no handshake: the only write is the claim
	})
	t.Cleanup(func() { _ = slow.Close() })
	s := redisstore.New(rdb).WithPrefix(prefix)
	require.NoError(t, s.Preload(t.Context()), "one EVALSHA: an EVAL after NOSCRIPT would not be sent, ctx being over")
	late := redisstore.New(slow).WithPrefix(prefix)
	for op, call := range map[string]func(context.Context, idempotency.Key, idempotency.Record) error{
		"claim": func(ctx context.Context, key idempotency.Key, rec idempotency.Record) error {
			_, err := late.Claim(ctx, key, rec, time.Minute)
			return err
		},
		"renew": func(ctx context.Context, key idempotency.Key, rec idempotency.Record) error {
			return late.Renew(ctx, key, rec, time.Minute)
		},
	} {
		key := idempotency.Key{Tenant: "acme", ID: rand.Text()}
		ctx, cancel := context.WithTimeout(t.Context(), delay/2)
		assert.ErrorIs(t, call(ctx, key, idempotency.Record{State: idempotency.InProgress, Token: "late"}), context.DeadlineExceeded, op)
		cancel()
		got, err := s.Claim(t.Context(), key, idempotency.Record{State: idempotency.InProgress, Token: "next"}, time.Minute)
		require.NoError(t, err)
		assert.Nil(t, got, "the late %s stored nothing: the next Claim wins, found %+v", op, got)
	}
}

func TestLateClaimClaimsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rdb, m := bubbled(t)
		lateClaimClaimsNothing(t, rdb, redisstore.DefaultPrefix, m.Dial, time.Second)
	})
}

// TestContract runs the suite on miniredis inside synctest bubbles.
func TestContract(t *testing.T) {
	contract.Run(t, contract.Harness{Bubble: true, New: func(t *testing.T) idempotency.Store {
		rdb, _ := bubbled(t)
		return redisstore.New(rdb)
	}})
}

// TestRoundTrips counts what the middleware sends to Redis: at most 2 round
// trips for a first request and 1 for a replay (the goals), against the
// article's 3 and 1.
func TestRoundTrips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rdb, _ := bubbled(t)
		var rt redisstore.RoundTrips
		rdb.AddHook(&rt)
		s := redisstore.New(rdb)
		require.NoError(t, s.Preload(t.Context()))
		mw, err := idempotency.New(idempotency.Config{Store: s})
		require.NoError(t, err)
		h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) }))
		post := func(key string) int {
			req := httptest.NewRequest("POST", "/payments", strings.NewReader(`{"amount":100}`))
			req.Header.Set(idempotency.HeaderKey, key)
			req.Header.Set(idempotency.HeaderTenant, "acme")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		for _, key := range []string{"first", "second"} {
			rt.Reset()
			require.Equal(t, http.StatusCreated, post(key))
			assert.Equal(t, int64(2), rt.Reset(), "%s key, first request: SET NX GET + EVALSHA", key)
			require.Equal(t, http.StatusCreated, post(key))
			assert.Equal(t, int64(1), rt.Reset(), "%s key, replay: SET NX GET", key)
		}
	})
}

// A record that is not JSON (written by something else) fails the claim:
// the middleware answers 503 and runs nothing, rather than guessing.
func TestUndecodableRecordIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rdb, m := bubbled(t)
		key := idempotency.Key{Tenant: "acme", ID: "k"}
		require.NoError(t, m.Set(redisstore.DefaultPrefix+key.String(), "not json"))
		_, err := redisstore.New(rdb).Claim(t.Context(), key, idempotency.Record{State: idempotency.InProgress, Token: "t"}, time.Minute)
		assert.ErrorContains(t, err, "undecodable record")
		assert.ErrorIs(t, redisstore.New(rdb).Complete(t.Context(), key, idempotency.Record{State: idempotency.Completed, Token: "t"}, 1e9), idempotency.ErrClaimLost,
			"and the scripts treat it as someone else's")
	})
}
