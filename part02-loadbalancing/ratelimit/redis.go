package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// fixedWindow counts a key's requests in Redis; the first request of a
// window starts its expiry. Also re-arms a key that has lost its expiry
// (PERSIST, a restore), which would otherwise count forever and block that
// client for good. One round trip, atomic: a script runs alone.
var fixedWindow = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`)

// FixedWindow is the article's distributed limiter: at most Limit requests
// per key per Window, counted in Redis so every replica of a service shares
// one count. It is a fixed window, not the sliding window the article's
// comment calls it: a client can send Limit at the end of one window and
// Limit at the start of the next, 2 × Limit within a moment (the subtest
// "twice the limit across a boundary" of TestFixedWindowOnMiniredis and
// TestFixedWindowOnRedis). Part 11 of the series has the sliding-window and
// GCRA limiters.
//
// The window is set in milliseconds (PEXPIRE). The article's
// EXPIRE int64(window.Seconds()) truncates: a 500 ms window becomes EXPIRE
// 0, which deletes the key at once, so the count never passes 1 and nothing
// is ever limited (TestArticleSubSecondWindowNeverLimits; the subtest
// "sub-second window" for this one).
type FixedWindow struct {
	Client redis.Scripter // *redis.Client, *redis.ClusterClient, …
	Limit  int64          // requests per window, ≥ 1
	Window time.Duration  // ≥ 1 ms
	Prefix string         // key prefix ("" = "ratelimit:")
	// Timeout bounds one check (0: 100 ms), so a hung Redis costs each
	// request at most this before the policy decides. go-redis applies a
	// context deadline to the socket only with Options.ContextTimeoutEnabled
	// (LimiterOptions sets it); without it a paused Redis holds every
	// request for ReadTimeout (3 s).
	Timeout time.Duration
}

// Allow counts one request of key and reports whether it is within the
// limit. A Redis error is returned as is: the caller (Middleware) decides
// between failing open and failing closed, instead of the article's silent
// "return true, nil", which no caller can log, count or overrule.
func (f *FixedWindow) Allow(ctx context.Context, key string) (Decision, error) {
	if f.Limit < 1 || f.Window < time.Millisecond {
		return Decision{}, fmt.Errorf("ratelimit: FixedWindow needs Limit ≥ 1 and Window ≥ 1ms, have %d and %v", f.Limit, f.Window)
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prefix := f.Prefix
	if prefix == "" {
		prefix = "ratelimit:"
	}
	res, err := fixedWindow.Run(ctx, f.Client, []string{prefix + key}, f.Window.Milliseconds()).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 2 {
		return Decision{}, errors.New("ratelimit: redis: unexpected script reply")
	}
	n, ttl := res[0], time.Duration(res[1])*time.Millisecond
	d := Decision{Limit: f.Limit, Remaining: max(f.Limit-n, 0)}
	if n <= f.Limit {
		d.Allowed = true
	} else {
		d.RetryAfter = ttl
	}
	return d, nil
}

// LimiterOptions adjusts go-redis options for a client that sits on the
// request path of every request: context deadlines reach the socket (so
// FixedWindow.Timeout holds), no command retries and one dial attempt (a
// check either answers within its budget or the policy decides; go-redis's
// defaults retry a failed dial 5 times 100 ms apart, so a stopped Redis
// reads as a timeout, not as the refused connection it is).
func LimiterOptions(o redis.Options) *redis.Options {
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	return &o
}
