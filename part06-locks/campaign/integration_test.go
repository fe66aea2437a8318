//go:build integration

package campaign

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part06-locks/lock"
)

// On the stack's Redis Cluster every command the campaign sends touches one
// slot: its keys share the hash tag {name}, so Open's MULTI, the claim script
// and the pipelines work. (Without the tag, name:left and name:winners hash
// to different slots and Redis answers CROSSSLOT.)
func TestCampaignOnRedisCluster(t *testing.T) {
	stack.Require(t, stack.RedisCluster)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := New(rdb, fmt.Sprintf("campaign:cluster-%d", time.Now().UnixNano()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	require.NoError(t, c.Open(ctx, 3))
	for _, claim := range []func(context.Context, string) (Result, error){c.ClaimAtomic, c.ClaimNoLock} {
		for _, user := range []string{"alice", "alice", "bob"} {
			_, err := claim(ctx, user)
			require.NoError(t, err)
		}
	}
	res, err := c.ClaimAtomic(ctx, "carol")
	require.NoError(t, err)
	assert.Equal(t, Won, res)
	res, err = c.ClaimAtomic(ctx, "dave")
	require.NoError(t, err)
	assert.Equal(t, SoldOut, res)
	left, winners, err := c.Tally(ctx)
	require.NoError(t, err)
	assert.Equal(t, [2]int64{0, 3}, [2]int64{left, winners}, "left, winners")
}

// TestLockAndScriptNeverOverAwardInRealTime is TestLockAndScriptNeverOverAward
// on the stack's Redis and Redlock masters, in real time. In the synctest
// variant a critical section takes no time, so a holder never outlives its
// TTL; here a few sections take 1.5 TTL, so the lock must be renewed under
// them: an expired lock would let a second holder read the same count and
// award a prize twice, and a renewal that failed would cancel the holder
// (a failed claim).
func TestLockAndScriptNeverOverAwardInRealTime(t *testing.T) {
	stack.Require(t, stack.Redis, stack.Redlock)
	const prizes, users, claimers, slow, ttl = 30, 60, 8, 3, time.Second
	rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	var masters []redis.UniversalClient
	for _, a := range stack.RedlockAddrs() {
		m := redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = m.Close() })
		masters = append(masters, m)
	}
	l, err := lock.NewRedlock(masters, lock.RedlockConfig{Prefix: "part06:test:", Tries: 1 << 20, RetryDelay: func(int) time.Duration { return 5 * time.Millisecond }})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for _, tt := range []struct {
		name  string
		claim func(c *Campaign) func(context.Context, string) (Result, error)
	}{
		{"global lock", func(c *Campaign) func(context.Context, string) (Result, error) {
			return func(ctx context.Context, user string) (Result, error) { return c.ClaimWithLock(ctx, l, ttl, user) }
		}},
		{"atomic script", func(c *Campaign) func(context.Context, string) (Result, error) { return c.ClaimAtomic }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(rdb, fmt.Sprintf("campaign:realtime-%d", time.Now().UnixNano()))
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			require.NoError(t, c.Open(ctx, prizes))
			var reads atomic.Int32
			c.afterRead = func() { // ClaimNoLock only: the lock's critical section
				if reads.Add(1) <= slow {
					time.Sleep(ttl * 3 / 2)
				}
			}
			s := Run(ctx, claimers, users, time.Minute, tt.claim(c))
			require.NoError(t, s.FirstError)
			assert.Zero(t, s.Failed, "no claim lost its lock")
			assert.Equal(t, prizes, s.Won)
			left, winners, err := c.Tally(ctx)
			require.NoError(t, err)
			assert.Equal(t, [2]int64{0, prizes}, [2]int64{left, winners}, "left, winners: never over")
			t.Logf("%s: won %d, sold out %d, already won %d in %v", tt.name, s.Won, s.SoldOut, s.AlreadyWon, s.Elapsed.Round(time.Millisecond))
		})
	}
}
