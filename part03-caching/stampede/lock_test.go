package stampede

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRedisLockReleaseIsSafe: a holder whose lease expired cannot release the lock
// another holder took since (a plain DEL would), and Unlock says so.
func TestRedisLockReleaseIsSafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mr, rdb := memClient(t)
		lock := &RedisLock{Client: rdb, Prefix: "lock:", TTL: time.Second}
		ctx := context.Background()
		a, ok, err := lock.TryLock(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		_, ok, err = lock.TryLock(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok, "a second holder while the first holds it")
		assert.Equal(t, time.Second, mr.TTL("lock:k"), "SET NX PX: the lock is a lease")

		time.Sleep(time.Second) // a's rebuild outlived its lease
		b, ok, err := lock.TryLock(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok, "the expired lease must free the lock")
		released, err := lock.Unlock(ctx, "k", a)
		require.NoError(t, err)
		assert.False(t, released, "a released a lock it no longer held")
		held, err := rdb.Get(ctx, "lock:k").Result()
		require.NoError(t, err)
		assert.Equal(t, b, held, "b's lock is gone: compare-and-delete failed")
		released, err = lock.Unlock(ctx, "k", b)
		require.NoError(t, err)
		assert.True(t, released)
		assert.False(t, mr.Exists("lock:k"))
	})
}

// process is one service instance: its own Group and Loader over the shared Redis
// store and lock (in-process here; the integration test runs real processes).
func process(rdb redis.Cmdable, lock bool) *Loader[string] {
	l := &Loader[string]{
		Store: RedisStore[string]{Client: rdb, Prefix: "entry:"}, TTL: time.Minute,
		Group: &Group[string]{}, Timeout: 10 * time.Second,
	}
	if lock {
		l.Lock = &RedisLock{Client: rdb, Prefix: "lock:", Wait: 5 * time.Second}
	}
	return l
}

// TestLoaderLockOneRebuildAcrossInstances: four instances (own Group each) miss one key
// together; with the lock one of them rebuilds and the others wait for its entry,
// without it each instance rebuilds once.
func TestLoaderLockOneRebuildAcrossInstances(t *testing.T) {
	for _, tc := range []struct {
		lock     bool
		rebuilds int64
	}{{true, 1}, {false, 4}} {
		synctest.Test(t, func(t *testing.T) {
			_, rdb := memClient(t)
			var rebuilds atomic.Int64
			fetch := func(context.Context) (string, error) {
				rebuilds.Add(1)
				time.Sleep(200 * time.Millisecond)
				return "v", nil
			}
			var wg sync.WaitGroup
			for range 4 {
				l := process(rdb, tc.lock)
				for range 25 {
					wg.Go(func() {
						v, err := l.Get(context.Background(), "hot", fetch)
						assert.NoError(t, err)
						assert.Equal(t, "v", v)
					})
				}
			}
			wg.Wait()
			assert.Equal(t, tc.rebuilds, rebuilds.Load(), "lock=%v: rebuilds for 4 instances × 25 concurrent misses", tc.lock)
		})
	}
}

// TestLoaderLockBusyServesOldValue: an instance that finds another rebuilding serves
// the value it may still serve (within StaleFor) at once instead of waiting.
func TestLoaderLockBusyServesOldValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, rdb := memClient(t)
		l := process(rdb, true)
		l.StaleFor = time.Minute
		ctx := context.Background()
		_, err := l.Get(ctx, "k", func(context.Context) (string, error) { return "old", nil })
		require.NoError(t, err)
		time.Sleep(time.Minute + time.Second) // expired, inside the grace
		require.NoError(t, rdb.Set(ctx, "lock:k", "another process", time.Minute).Err())
		v, err := l.Get(ctx, "k", func(context.Context) (string, error) {
			t.Error("fetched while another process held the lock")
			return "new", nil
		})
		require.NoError(t, err)
		assert.Equal(t, "old", v)
		assert.Equal(t, int64(1), l.Stats().LockBusy)
	})
}

// TestLoaderLockWaitIsBounded: with nothing to serve and a lock nobody releases, a
// waiter gives up after Wait with ErrLockWait; when the dead holder's lease ends, the
// next caller takes the lock and rebuilds.
func TestLoaderLockWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, rdb := memClient(t)
		l := process(rdb, true)
		l.Lock.Wait = time.Second
		ctx := context.Background()
		require.NoError(t, rdb.Set(ctx, "lock:k", "a process that died", 3*time.Second).Err())
		fetch := func(context.Context) (string, error) { return "v", nil }
		start := time.Now()
		_, err := l.Get(ctx, "k", fetch)
		require.ErrorIs(t, err, ErrLockWait)
		assert.Equal(t, time.Second, time.Since(start).Round(l.Lock.poll()), "the wait is bounded by Wait")
		assert.Equal(t, int64(1), l.Stats().LockTimeouts)

		time.Sleep(2 * time.Second) // the dead holder's lease runs out
		v, err := l.Get(ctx, "k", fetch)
		require.NoError(t, err)
		assert.Equal(t, "v", v)
		assert.Equal(t, int64(1), l.Stats().LockRebuilds)
	})
}
