package redislimit_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// articleLog is the article's sliding-window log as it is called: the
// application server passes its own clock as ARGV[1] (ms), then the window
// (ms), the limit and a request id; the script trims, counts, and logs the
// request if there is room.
var articleLog = redis.NewScript(`
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, count + 1}
end
return {0, count}`)

// Erratum 3: each application server passes its own clock, so the log mixes
// clocks. Two servers take turns with one client's requests, ten a second
// for 2 minutes; server B's clock is behind by skew. The server ahead
// trims the other's entries early (they look older than they are) and
// admits more: more than 10 requests in one real 60 s window under a limit
// of 10. With one clock (skew 0) the log holds. The scripts here read Redis
// TIME (TestDecisionsAreExact drives that clock; TestRealRedisAndCluster
// checks the windows on Decision.At, Redis's time).
func TestArticleClockSkewBreaksTheWindow(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	const limit, window = 10, time.Minute
	base := time.Unix(1_750_000_000, 0)
	most := map[time.Duration]int{}
	for _, skew := range []time.Duration{0, time.Second, 5 * time.Second, 30 * time.Second} {
		key := fmt.Sprintf("{rate:203.0.113.7}:log:%v", skew)
		var admitted []time.Time
		for i := range 1200 {
			real := base.Add(time.Duration(i) * 100 * time.Millisecond)
			now := real // server A
			if i%2 == 1 {
				now = real.Add(-skew) // server B
			}
			v, err := articleLog.Run(context.Background(), rdb, []string{key},
				now.UnixMilli(), window.Milliseconds(), limit, strconv.Itoa(i)).Int64Slice()
			require.NoError(t, err)
			if v[0] == 1 {
				admitted = append(admitted, real)
			}
		}
		most[skew] = quota.MaxInWindow(admitted, window)
	}
	t.Logf("most admitted in any real 60 s window, by skew: %v", most)
	assert.Equal(t, map[time.Duration]int{0: limit, time.Second: 14, 5 * time.Second: 15, 30 * time.Second: 15}, most,
		"one clock: never more than the limit; B behind: more")
}

// Erratum 4: the article's Retry-After is the window in whole seconds,
// however soon the client could retry, and "0" for a window under a second.
func TestArticleRetryAfterIsTheWindow(t *testing.T) {
	retryAfter := func(window time.Duration) string { return strconv.FormatInt(window.Milliseconds()/1000, 10) }
	assert.Equal(t, "60", retryAfter(time.Minute), "whatever the wait")
	assert.Equal(t, "0", retryAfter(500*time.Millisecond), "retry at once")
}
