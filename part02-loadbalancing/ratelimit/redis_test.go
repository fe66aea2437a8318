package ratelimit

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FixedWindowContract is what FixedWindow must do on any Redis: the
// in-process miniredis here, the stack's Redis in redis_integration_test.go.
// window is the windows' length; advance moves the limiter's time on (the
// miniredis clock; on real Redis, the keys' TTLs), so that no check depends
// on how fast the machine answers. Each check gets checkTimeout: the
// contract is about counting, and FixedWindow's 100 ms default, a budget for
// a request path, failed checks of a loaded 2-core machine under -race
// ("i/o timeout" with 30 ms of added latency).
const checkTimeout = 10 * time.Second

func fixedWindowContract(t *testing.T, client redis.Scripter, prefix string, window time.Duration, advance func(*testing.T, time.Duration)) {
	t.Run("limit per window, then a new window", func(t *testing.T) {
		f := &FixedWindow{Client: client, Limit: 3, Window: window, Prefix: prefix, Timeout: checkTimeout}
		for i := range 3 {
			d := allow(t, f, "a")
			require.True(t, d.Allowed, "request %d", i+1)
			assert.Equal(t, int64(2-i), d.Remaining)
			assert.Equal(t, int64(3), d.Limit)
		}
		d := allow(t, f, "a")
		assert.False(t, d.Allowed)
		assert.Equal(t, int64(0), d.Remaining)
		assert.Greater(t, d.RetryAfter, time.Duration(0))
		assert.LessOrEqual(t, d.RetryAfter, window)
		assert.True(t, allow(t, f, "b").Allowed, "another key, another count")
		advance(t, window*11/10)
		assert.True(t, allow(t, f, "a").Allowed, "the next window")
	})

	// The article's comment says "sliding window"; it is fixed: a client
	// that sends the limit at the end of one window and again at the start
	// of the next passes twice the limit within a moment.
	t.Run("twice the limit across a boundary", func(t *testing.T) {
		f := &FixedWindow{Client: client, Limit: 5, Window: window, Prefix: prefix, Timeout: checkTimeout}
		allow(t, f, "edge") // opens the window
		advance(t, window*9/10)
		passed := 1
		for range 4 {
			if allow(t, f, "edge").Allowed {
				passed++
			}
		}
		advance(t, window/5) // 1.1 windows: the next window
		for range 5 {
			if allow(t, f, "edge").Allowed {
				passed++
			}
		}
		assert.Equal(t, 10, passed, "9 of them within 0.2 windows")
	})

	// The article passes int64(window.Seconds()) to EXPIRE: a 500 ms window
	// is EXPIRE 0, which deletes the key at once, so nothing is limited.
	// PEXPIRE keeps the 500 ms.
	t.Run("sub-second window", func(t *testing.T) {
		f := &FixedWindow{Client: client, Limit: 2, Window: 500 * time.Millisecond, Prefix: prefix, Timeout: checkTimeout}
		assert.True(t, allow(t, f, "fast").Allowed)
		assert.True(t, allow(t, f, "fast").Allowed)
		d := allow(t, f, "fast")
		assert.False(t, d.Allowed)
		assert.LessOrEqual(t, d.RetryAfter, 500*time.Millisecond)
		advance(t, 600*time.Millisecond)
		assert.True(t, allow(t, f, "fast").Allowed)
	})
}

func TestFixedWindowOnMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	fixedWindowContract(t, rdb, "test:", time.Second, func(_ *testing.T, d time.Duration) { mr.FastForward(d) })

	t.Run("a key that lost its expiry is re-armed", func(t *testing.T) {
		f := &FixedWindow{Client: rdb, Limit: 1, Window: time.Second, Prefix: "test:"}
		allow(t, f, "stuck")
		require.NoError(t, rdb.Persist(t.Context(), "test:stuck").Err()) // a key that would otherwise count forever
		assert.False(t, allow(t, f, "stuck").Allowed)
		assert.Greater(t, mr.TTL("test:stuck"), time.Duration(0))
		mr.FastForward(time.Second)
		assert.True(t, allow(t, f, "stuck").Allowed)
	})
}

// The error reaches the caller (the article returns true, nil): the
// middleware's policy decides, and it can be logged.
func TestFixedWindowReturnsRedisErrors(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	f := &FixedWindow{Client: rdb, Limit: 1, Window: time.Second}
	mr.Close()
	_, err := f.Allow(t.Context(), "a")
	assert.ErrorContains(t, err, "ratelimit: redis:")

	for _, bad := range []*FixedWindow{{Client: rdb, Limit: 0, Window: time.Second}, {Client: rdb, Limit: 1, Window: time.Microsecond}} {
		_, err := bad.Allow(t.Context(), "a")
		assert.ErrorContains(t, err, "needs Limit ≥ 1 and Window ≥ 1ms")
	}
}
