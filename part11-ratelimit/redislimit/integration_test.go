//go:build integration

package redislimit_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

// target is a real Redis deployment and the round-trip counter on its
// node clients.
type target struct {
	name string
	rdb  redis.UniversalClient
	rt   *roundTrips
}

func targets(t *testing.T) []target {
	t.Helper()
	stack.Require(t, stack.Redis, stack.RedisCluster)
	single := &roundTrips{}
	rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), MaxRetries: -1, ContextTimeoutEnabled: true})
	rdb.AddHook(single)
	clustered := &roundTrips{}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs()})
	cc.OnNewNode(func(c *redis.Client) { c.AddHook(clustered) })
	t.Cleanup(func() { _ = rdb.Close(); _ = cc.Close() })
	return []target{{"redis", rdb, single}, {"cluster", cc, clustered}}
}

func prefix(t *testing.T, algo redislimit.Algorithm) string {
	return "rl:it:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":" + algo.String() + ":"
}

// Concurrent checks on one key from many goroutines, on real Redis and on
// the cluster, on Redis's own clock: every algorithm admits what its rule
// allows for the instants Redis decided at (exactly Limit of a burst that
// stays within one window), keeps its promise over the admitted instants
// (Decision.At is Redis TIME), and makes one round trip per check.
func TestRealRedisAndCluster(t *testing.T) {
	p := quota.Policy{Limit: 50, Window: time.Second}
	for _, tg := range targets(t) {
		for _, algo := range redislimit.Algorithms {
			t.Run(tg.name+"/"+algo.String(), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				l, err := redislimit.New(tg.rdb, algo, p, prefix(t, algo))
				require.NoError(t, err)
				require.NoError(t, l.Load(ctx))
				t.Cleanup(func() { tg.rdb.Del(context.Background(), l.Key("burst"), l.Key("steady")) })

				tg.rt.n.Store(0)
				var wg sync.WaitGroup
				decisions := make(chan quota.Decision, 200)
				errs := make(chan error, 200)
				for range 8 {
					wg.Go(func() {
						for range 25 {
							d, err := l.Allow(ctx, "burst")
							if err != nil {
								errs <- err
								return
							}
							decisions <- d
						}
					})
				}
				wg.Wait()
				close(decisions)
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
				admitted := 0
				var burst []time.Time
				for d := range decisions {
					if d.Allowed {
						admitted++
					}
					burst = append(burst, d.At)
				}
				assert.Equal(t, int64(200), tg.rt.n.Load(), "one round trip per check")
				lo, hi := burstBounds(algo, p, burst)
				assert.True(t, lo <= admitted && admitted <= hi, "admitted %d of a burst over %v of Redis's clock, want %d..%d",
					admitted, burst[len(burst)-1].Sub(burst[0]), lo, hi)

				// steady over-rate traffic for three windows on Redis's clock
				var at []time.Time
				deadline := time.Now().Add(3 * p.Window)
				for time.Now().Before(deadline) {
					d, err := l.Allow(ctx, "steady")
					require.NoError(t, err)
					if d.Allowed {
						at = append(at, d.At)
					}
					time.Sleep(p.Window / time.Duration(4*p.Limit)) // 4× the rate
				}
				most := quota.MaxInWindow(at, p.Window)
				switch algo {
				case redislimit.SlidingLog:
					assert.LessOrEqual(t, most, p.Limit, "the log never exceeds the limit in any window")
				case redislimit.FixedWindow, redislimit.SlidingCounter, redislimit.GCRA:
					assert.LessOrEqual(t, most, 2*p.Limit, "at most twice the limit in any window")
				}
				assert.GreaterOrEqual(t, len(at), 2*p.Limit, "over three windows at 4× the rate, at least two windows' worth admitted")
			})
		}
	}
}

// burstBounds is what algo may admit of checks that Redis decided at the
// instants at (Decision.At, sorted here). The 200 checks of a burst take a
// few milliseconds of Redis's clock, and now and then those milliseconds
// cross a fixed window's edge: the fixed window then admits Limit on each
// side, the counter up to Limit on each side, and GCRA refills one token per
// interval throughout. Exactly Limit holds only for the sliding log, and for
// the others when the burst stays within one window.
func burstBounds(algo redislimit.Algorithm, p quota.Policy, at []time.Time) (lo, hi int) {
	slices.SortFunc(at, time.Time.Compare)
	perWindow := 0 // Limit, or fewer checks, in each fixed window the burst touched
	n := map[int64]int{}
	for _, t := range at {
		n[t.UnixMicro()/p.Window.Microseconds()]++
	}
	for _, c := range n {
		perWindow += min(c, p.Limit)
	}
	switch algo {
	case redislimit.SlidingLog: // the ideal sliding window, replayed
		var admitted []time.Time
		for _, t := range at {
			if quota.MaxInWindow(append(admitted, t), p.Window) <= p.Limit {
				admitted = append(admitted, t)
			}
		}
		return len(admitted), len(admitted)
	case redislimit.FixedWindow:
		return perWindow, perWindow
	case redislimit.SlidingCounter:
		return p.Limit, perWindow
	}
	return p.BurstSize(), p.BurstSize() + int(at[len(at)-1].Sub(at[0])/p.Interval()) // GCRA
}

// Keys are hash-tagged by client: every algorithm's key of one client is in
// that client's slot, and CLUSTER KEYSLOT agrees with Slot.
func TestClusterSlotsOfKeys(t *testing.T) {
	stack.Require(t, stack.RedisCluster)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs()})
	defer cc.Close()
	for _, algo := range redislimit.Algorithms {
		l, err := redislimit.New(cc, algo, policy, "rl:slot:")
		require.NoError(t, err)
		for _, id := range []string{"203.0.113.7", "2001:db8::/64", "hello:198.51.100.9/32"} {
			got, err := cc.ClusterKeySlot(t.Context(), l.Key(id)).Result()
			require.NoError(t, err)
			assert.Equal(t, int64(redislimit.Slot(l.Key(id))), got)
			assert.Equal(t, redislimit.Slot(id), redislimit.Slot(l.Key(id)), "the slot is the client id's")
		}
	}
}
