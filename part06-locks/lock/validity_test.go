package lock

import (
	"context"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-redsync/redsync/v4"
	rsredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The article's example: 10,000 − (120 + 50 + 100) = 9,730 ms.
func TestMinValidityArticleExample(t *testing.T) {
	assert.Equal(t, 9730*time.Millisecond, MinValidity(10*time.Second, 120*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond))
	assert.Equal(t, 100*time.Millisecond, Drift(10*time.Second, RedsyncDriftFactor), "1% of the TTL")
}

func TestValidity(t *testing.T) {
	for _, tt := range []struct {
		ttl, elapsed time.Duration
		factor       float64
		want         time.Duration
	}{
		{10 * time.Second, 40 * time.Millisecond, 0.01, 9860 * time.Millisecond},     // three masters answering in parallel in 40 ms
		{10 * time.Second, 120 * time.Millisecond, 0.01, 9780 * time.Millisecond},    // the article's 3 × 40 ms, if they answered one after another
		{8 * time.Second, 0, RedsyncDriftFactor, 7920 * time.Millisecond},            // redsync's defaults
		{500 * time.Millisecond, 2 * time.Millisecond, 0.01, 493 * time.Millisecond}, // the PayPay TTL
		{100 * time.Millisecond, 99 * time.Millisecond, 0.01, 0},                     // not positive: redsync refuses the lock
	} {
		assert.Equal(t, tt.want, Validity(tt.ttl, tt.elapsed, tt.factor), "ttl %v elapsed %v", tt.ttl, tt.elapsed)
	}
}

// Drift accrues over the TTL: "~1–2ms/s → ~200ms for large clusters" needs a
// 100–200 s TTL, whatever the cluster's size.
func TestClockDriftGrowsWithTTLNotNodes(t *testing.T) {
	assert.Equal(t, 10*time.Millisecond, ClockDrift(10*time.Second, 0.001))
	assert.Equal(t, 20*time.Millisecond, ClockDrift(10*time.Second, 0.002))
	assert.Equal(t, time.Millisecond, ClockDrift(500*time.Millisecond, 0.002))
	assert.Equal(t, 200*time.Millisecond, ClockDrift(100*time.Second, 0.002))
}

func TestLeaseSeconds(t *testing.T) {
	for _, tt := range []struct {
		ttl  time.Duration
		want int64
		err  bool
	}{
		{500 * time.Millisecond, 0, true}, // the PayPay TTL: int(0.5) = 0 → WithTTL's 60 s default
		{999 * time.Millisecond, 0, true},
		{0, 0, true},
		{-time.Second, 0, true},
		{time.Second, 1, false},
		{1500 * time.Millisecond, 2, false}, // rounded up, never down to 1
		{1900 * time.Millisecond, 2, false},
		{10 * time.Second, 10, false},
		{time.Duration(1<<63 - 1), 9223372037, false}, // no overflow
	} {
		got, err := LeaseSeconds(tt.ttl)
		if tt.err {
			assert.ErrorIs(t, err, ErrInvalid, "ttl %v", tt.ttl)
			assert.ErrorContains(t, err, "whole seconds")
			continue
		}
		require.NoError(t, err, "ttl %v", tt.ttl)
		assert.Equal(t, tt.want, got, "ttl %v", tt.ttl)
	}
}

// recorder is a go-redis hook that notes when each SET NX started, and
// delays every command by latency (fake time inside a bubble).
type recorder struct {
	mu      sync.Mutex
	setnx   []time.Time
	latency time.Duration
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "set" { // the lock's SET NX; not the connection's HELLO and CLIENT commands
			r.mu.Lock()
			r.setnx = append(r.setnx, time.Now())
			r.mu.Unlock()
			time.Sleep(r.latency)
		}
		return next(ctx, cmd)
	}
}

func pools(clients []redis.UniversalClient) []rsredis.Pool {
	var p []rsredis.Pool
	for _, c := range clients {
		p = append(p, goredis.NewPool(c))
	}
	return p
}

// TestRedsyncDefaults measures each default of the redsync release in go.mod
// on a real redsync Mutex (fake clock), against the Redsync* constants: the
// expiry and drift through Until(), the tries and the retry delays by
// counting the SET NX attempts on a lock someone else holds, and the timeout
// factor on masters that never answer.
func TestRedsyncDefaults(t *testing.T) {
	t.Run("expiry and drift factor", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			mrs, clients := masters(t, 3)
			m := redsync.New(pools(clients)...).NewMutex("lock:defaults")
			start := time.Now()
			require.NoError(t, m.Lock())
			assert.Equal(t, start.Add(Validity(RedsyncExpiry, 0, RedsyncDriftFactor)), m.Until(), "Until() = start + 8s − 8s×0.01")
			assert.Equal(t, RedsyncExpiry, mrs[0].TTL("lock:defaults"), "SET NX PX 8000")
		})
	})
	t.Run("tries and retry delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			mrs, clients := masters(t, 1)
			rec := &recorder{}
			clients[0].(*redis.Client).AddHook(rec)
			require.NoError(t, mrs[0].Set("lock:held", "someone else"))
			err := redsync.New(pools(clients)...).NewMutex("lock:held").Lock()
			var taken *redsync.ErrTaken
			require.ErrorAs(t, err, &taken, "the last try's answer")
			require.Len(t, rec.setnx, RedsyncTries)
			for i := 1; i < len(rec.setnx); i++ {
				d := rec.setnx[i].Sub(rec.setnx[i-1])
				assert.GreaterOrEqual(t, d, RedsyncRetryDelayMin, "delay before try %d", i+1)
				assert.Less(t, d, RedsyncRetryDelayMax, "delay before try %d", i+1)
			}
		})
	})
	t.Run("timeout factor", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var sinks []net.Conn
			defer func() {
				for _, c := range sinks {
					_ = c.Close()
				}
			}()
			var mu sync.Mutex
			blackHole := redis.NewClient(&redis.Options{
				Addr: "127.0.0.1:6379", MaxRetries: -1, PoolSize: 16, ContextTimeoutEnabled: true,
				Dialer: func(context.Context, string, string) (net.Conn, error) {
					c, s := net.Pipe() // nobody reads s: every write blocks until its deadline
					mu.Lock()
					sinks = append(sinks, s)
					mu.Unlock()
					return c, nil
				},
			})
			defer blackHole.Close()
			m := redsync.New(goredis.NewPool(blackHole)).NewMutex("lock:silent", redsync.WithTries(1))
			start := time.Now()
			err := m.Lock()
			var rerr *redsync.RedisError
			require.ErrorAs(t, err, &rerr)
			var nerr net.Error
			require.ErrorAs(t, err, &nerr)
			assert.True(t, nerr.Timeout(), "%v", err)
			// One try: SET NX until its deadline, then the release script until its own.
			assert.Equal(t, 2*AttemptTimeout(RedsyncExpiry, RedsyncTimeoutFactor), time.Since(start), "two phases of 8s × 0.05")
		})
	})
}

// The article's "AcquisitionTime = 120ms (3 nodes × 40ms each)": redsync asks
// the masters at once, so three masters that each take 40 ms cost 40 ms, and
// the lock is valid for ttl − 40 ms − drift from then. (Until() itself is
// the acquisition's start + ttl − drift whatever it took.)
func TestAcquisitionIsParallelNotSummed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, clients := masters(t, 3)
		for _, c := range clients {
			c.(*redis.Client).AddHook(&recorder{latency: 40 * time.Millisecond})
		}
		m := redsync.New(pools(clients)...).NewMutex("lock:slow", redsync.WithExpiry(10*time.Second))
		start := time.Now()
		require.NoError(t, m.Lock())
		assert.Equal(t, 40*time.Millisecond, time.Since(start), "acquisition time")
		assert.Equal(t, Validity(10*time.Second, 40*time.Millisecond, RedsyncDriftFactor), time.Until(m.Until()), "9,860 ms left, not 9,730")
		assert.Equal(t, start.Add(10*time.Second-Drift(10*time.Second, RedsyncDriftFactor)), m.Until())
	})
}

// "A negative validity time means the lock has already expired during
// acquisition and must be released immediately": masters that take longer
// to answer than the TTL give redsync a quorum with no validity left; it
// refuses the lock and deletes what it set.
func TestRedsyncRefusesALockThatExpiredWhileTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		for _, c := range clients {
			c.(*redis.Client).AddHook(&recorder{latency: 45 * time.Millisecond})
		}
		m := redsync.New(pools(clients)...).NewMutex("lock:late", redsync.WithExpiry(50*time.Millisecond), redsync.WithTries(1),
			redsync.WithTimeoutFactor(0.95), redsync.WithDriftFactor(0.2)) // a try may take 47.5 ms; 10 ms of drift
		assert.Equal(t, -5*time.Millisecond, Validity(50*time.Millisecond, 45*time.Millisecond, 0.2))
		require.ErrorIs(t, m.Lock(), redsync.ErrFailed)
		for i, mr := range mrs {
			assert.False(t, mr.Exists("lock:late"), "master %d: released", i)
		}
	})
}

// "AcquisitionTime: Actual elapsed time to acquire locks across majority
// nodes." redsync, without WithFailFast, waits for every master's answer (or
// its try timeout) before it computes the validity: with masters answering
// in 10, 20 and 400 ms the lock is taken after 400 ms and is good for
// 10,000 − 400 − 100 = 9,500 ms, though a majority answered after 20 ms.
// With WithFailFast it returns at the majority: 20 ms, 9,880 ms.
func TestArticleAcquisitionTimeIsTheSlowestMasterNotTheMajority(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failFast bool
		took     time.Duration
	}{
		{"redsync's default, as the article uses it", false, 400 * time.Millisecond},
		{"WithFailFast", true, 20 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, clients := masters(t, 3)
				for i, c := range clients {
					c.(*redis.Client).AddHook(&recorder{latency: []time.Duration{10, 20, 400}[i] * time.Millisecond})
				}
				m := redsync.New(pools(clients)...).NewMutex("lock:slow-one", redsync.WithExpiry(10*time.Second), redsync.WithFailFast(tt.failFast))
				start := time.Now()
				require.NoError(t, m.Lock())
				assert.Equal(t, tt.took, time.Since(start), "acquisition time")
				assert.Equal(t, Validity(10*time.Second, tt.took, RedsyncDriftFactor), time.Until(m.Until()))
				time.Sleep(time.Second) // the slow master's SET lands before the bubble ends
			})
		})
	}
}
