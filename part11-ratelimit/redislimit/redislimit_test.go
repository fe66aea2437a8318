package redislimit_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota/quotatest"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

// base is a window edge for every window used here (a whole number of hours
// since the epoch), so fixed windows start at +0.
var base = time.Unix(1_750_000_000-1_750_000_000%3600, 0)

// stopped runs a limiter on miniredis with its clock stopped: Redis TIME,
// which the scripts read, returns whatever AllowAt says.
type stopped struct {
	mr *miniredis.Miniredis
	l  *redislimit.Limiter
}

func (s stopped) AllowAt(key string, at time.Time) (quota.Decision, error) {
	s.mr.SetTime(at)
	return s.l.Allow(context.Background(), key)
}

func newStopped(t *testing.T, algo redislimit.Algorithm, p quota.Policy) stopped {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := redislimit.New(rdb, algo, p, "rl:test:")
	require.NoError(t, err)
	return stopped{mr, l}
}

var policy = quota.Policy{Limit: 10, Window: 10 * time.Second}

// Every algorithm's Remaining, RetryAfter and Reset are exact to the
// microsecond: a client that trusts them is admitted exactly when they say.
func TestDecisionsAreExact(t *testing.T) {
	for _, algo := range redislimit.Algorithms {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(algo.String(), func(t *testing.T) {
				t.Parallel()
				s := newStopped(t, algo, policy)
				offs := quotatest.Arrivals(seed, 60, 40*time.Second)
				quotatest.CheckExact(t, s, base, offs, 15, time.Microsecond)
			})
		}
	}
}

// The sliding log admits exactly what an ideal sliding window admits: a
// request is admitted iff fewer than Limit were admitted in (t−Window, t].
// So it never has more than Limit in any window.
func TestSlidingLogIsTheExactSlidingWindow(t *testing.T) {
	for seed := range uint64(5) {
		s := newStopped(t, redislimit.SlidingLog, policy)
		offs := quotatest.Arrivals(seed, 200, time.Minute)
		got := quotatest.Replay(t, s, "c", base, offs)
		var admitted []time.Duration
		for i, off := range offs {
			n := 0
			for _, a := range admitted {
				if a > off-policy.Window {
					n++
				}
			}
			want := n < policy.Limit
			require.Equal(t, want, got[i].Allowed, "seed %d request %d at +%v", seed, i, off)
			if want {
				admitted = append(admitted, off)
			}
		}
		assert.LessOrEqual(t, quota.MaxInWindow(quotatest.Admitted(base, offs, got), policy.Window), policy.Limit)
	}
}

// What each approximation promises, checked over random histories.
func TestBoundsOfTheOtherAlgorithms(t *testing.T) {
	p := quota.Policy{Limit: 10, Window: 10 * time.Second, Burst: 4}
	for seed := range uint64(5) {
		offs := quotatest.Arrivals(seed, 300, 2*time.Minute)
		t.Run("fixed: at most Limit per fixed window, and exactly min(Limit, arrivals)", func(t *testing.T) {
			got := quotatest.Replay(t, newStopped(t, redislimit.FixedWindow, p), "c", base, offs)
			per, arrivals := map[int64]int{}, map[int64]int{}
			for i, off := range offs {
				w := int64(off / p.Window)
				arrivals[w]++
				if got[i].Allowed {
					per[w]++
				}
			}
			for w, n := range arrivals {
				assert.Equal(t, min(n, p.Limit), per[w], "window %d", w)
			}
		})
		t.Run("counter: at most Limit per fixed window, under 2×Limit per sliding window", func(t *testing.T) {
			got := quotatest.Replay(t, newStopped(t, redislimit.SlidingCounter, p), "c", base, offs)
			per := map[int64]int{}
			for i, off := range offs {
				if got[i].Allowed {
					per[int64(off/p.Window)]++
				}
			}
			for w, n := range per {
				assert.LessOrEqual(t, n, p.Limit, "window %d", w)
			}
			assert.Less(t, quota.MaxInWindow(quotatest.Admitted(base, offs, got), p.Window), 2*p.Limit)
		})
		t.Run("gcra: at most Burst + d/interval in any interval d", func(t *testing.T) {
			got := quotatest.Replay(t, newStopped(t, redislimit.GCRA, p), "c", base, offs)
			at := quotatest.Admitted(base, offs, got)
			for i := range at {
				for j := i; j < len(at); j++ {
					bound := float64(p.BurstSize()) + float64(at[j].Sub(at[i]))/float64(p.Interval())
					require.LessOrEqual(t, float64(j-i+1), bound, "admitted %d in %v", j-i+1, at[j].Sub(at[i]))
				}
			}
		})
	}
}

// The counter's weighting, by hand: 10 per 10 s, 10 admitted late in one
// window, then at 30% into the next the previous window still weighs 70%:
// 7 + 3 = 10, so exactly 3 more are admitted.
func TestSlidingCounterWeighsThePreviousWindow(t *testing.T) {
	s := newStopped(t, redislimit.SlidingCounter, policy)
	for range 10 {
		d, err := s.AllowAt("c", base.Add(9*time.Second))
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	var got []bool
	for range 5 {
		d, err := s.AllowAt("c", base.Add(13*time.Second))
		require.NoError(t, err)
		got = append(got, d.Allowed)
	}
	assert.Equal(t, []bool{true, true, true, false, false}, got)
}

// roundTrips counts the commands a client sends to Redis, except a new
// connection's handshake (HELLO, CLIENT SETINFO) and what a cluster client
// fetches once for itself (CLUSTER SLOTS/SHARDS, COMMAND), none of which is
// part of a check.
type roundTrips struct{ n atomic.Int64 }

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "cluster", "command":
		return true
	}
	return false
}

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// One check is one round trip: EVALSHA. Without Load, the first check on a
// fresh Redis costs two (NOSCRIPT, then EVAL with the script text).
func TestOneRoundTripPerCheck(t *testing.T) {
	for _, algo := range redislimit.Algorithms {
		t.Run(algo.String(), func(t *testing.T) {
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
			defer rdb.Close()
			var rt roundTrips
			rdb.AddHook(&rt)
			l, err := redislimit.New(rdb, algo, policy, "rl:rt:")
			require.NoError(t, err)
			_, err = l.Allow(t.Context(), "first")
			require.NoError(t, err)
			assert.Equal(t, int64(2), rt.n.Load(), "cold: NOSCRIPT, then EVAL")
			rt.n.Store(0)
			for i := range 100 {
				_, err := l.Allow(t.Context(), "c"+string(rune('a'+i%26)))
				require.NoError(t, err)
			}
			assert.Equal(t, int64(100), rt.n.Load(), "warm: one EVALSHA per check")

			// A restarted or failed-over Redis has an empty script cache.
			require.NoError(t, rdb.ScriptFlush(t.Context()).Err())
			rt.n.Store(0)
			_, err = l.Allow(t.Context(), "after-flush")
			require.NoError(t, err)
			assert.Equal(t, int64(2), rt.n.Load(), "after a script flush: NOSCRIPT, then EVAL")

			require.NoError(t, rdb.ScriptFlush(t.Context()).Err())
			require.NoError(t, l.Load(t.Context()))
			rt.n.Store(0)
			_, err = l.Allow(t.Context(), "after-load")
			require.NoError(t, err)
			assert.Equal(t, int64(1), rt.n.Load(), "after Load: one round trip")
		})
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	for _, tt := range []struct {
		algo   redislimit.Algorithm
		p      quota.Policy
		prefix string
		msg    string
	}{
		{redislimit.GCRA, quota.Policy{Limit: 0, Window: time.Second}, "rl:", "limit 0 is out of range"},
		{redislimit.GCRA, quota.Policy{Limit: 1, Window: 0}, "rl:", "window 0s is out of range"},
		{redislimit.GCRA, policy, "rl:{all}:", "contains a brace"},
		{redislimit.SlidingCounter, quota.Policy{Limit: 1_000_000, Window: 744 * time.Hour}, "rl:", "exceeds 2^53"},
		{redislimit.Algorithm(9), policy, "rl:", "unknown algorithm 9"},
	} {
		_, err := redislimit.New(rdb, tt.algo, tt.p, tt.prefix)
		assert.ErrorContains(t, err, tt.msg)
	}
	_, err := redislimit.ParseAlgorithm("leaky")
	assert.ErrorContains(t, err, `unknown algorithm "leaky"`)
	for _, a := range redislimit.Algorithms {
		got, err := redislimit.ParseAlgorithm(a.String())
		require.NoError(t, err)
		assert.Equal(t, a, got)
	}
}

// A Redis that is down is an error, never a decision: the caller chooses
// between failing open and failing closed.
func TestRedisDownIsAnError(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	l, err := redislimit.New(rdb, redislimit.GCRA, policy, "rl:")
	require.NoError(t, err)
	mr.Close()
	_, err = l.Allow(t.Context(), "c")
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "redislimit gcra: "), err.Error())
}

// Keys tag the client id, so all of one client's keys share a slot while
// clients spread over the cluster.
func TestKeysAreHashTaggedByClient(t *testing.T) {
	log, err := redislimit.New(nil, redislimit.SlidingLog, policy, "rl:log:")
	require.NoError(t, err)
	gcra, err := redislimit.New(nil, redislimit.GCRA, policy, "rl:gcra:")
	require.NoError(t, err)
	assert.Equal(t, "rl:log:{203.0.113.7}", log.Key("203.0.113.7"))
	assert.Equal(t, redislimit.Slot(log.Key("203.0.113.7")), redislimit.Slot(gcra.Key("203.0.113.7")))
	slots := map[int]bool{}
	for i := range 1000 {
		slots[redislimit.Slot(log.Key("198.51.100."+string(rune('0'+i%10))+string(rune('0'+i/10%10))+string(rune('0'+i/100))))] = true
	}
	assert.Greater(t, len(slots), 900, "1,000 clients spread over the slots")
}

// Slot agrees with Redis: the hash-tag examples of the Redis Cluster
// specification, with the slots CLUSTER KEYSLOT gives for them (Redis 7.0).
func TestSlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":            12739, // CRC16/XMODEM check value 0x31C3 mod 16384
		"{user1000}.following": 3443,  // the tag: user1000
		"foo{}{bar}":           8363,  // an empty first tag: the whole key
		"foo{{bar}}zap":        4015,  // the tag: {bar
		"foo{bar}{zap}":        5061,  // the first tag: bar
	} {
		assert.Equal(t, want, redislimit.Slot(key), key)
	}
	assert.Equal(t, 0x31C3%redislimit.Slots, redislimit.Slot("123456789"))
}
