package limiter_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// Callers leave exactly one interval apart, in arrival order; those who
// would wait longer than MaxDelay are refused at once.
func TestLeakySpacesCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := limiter.NewLeaky(quota.Policy{Limit: 10, Window: time.Second}, 300*time.Millisecond)
		require.NoError(t, err)
		start := time.Now()
		var mu sync.Mutex
		var left []time.Duration
		var refused int
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				err := l.Wait(t.Context())
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					assert.ErrorIs(t, err, limiter.ErrQueueFull)
					refused++
					return
				}
				left = append(left, time.Since(start))
			})
			synctest.Wait() // each caller queues before the next arrives
		}
		wg.Wait()
		assert.ElementsMatch(t, []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}, left)
		assert.Equal(t, 2, refused, "a queue of 300 ms holds 3 callers behind the first")
	})
}

// A cancelled caller at the back of the queue gives its slot back.
func TestLeakyCancelGivesTheSlotBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := limiter.NewLeaky(quota.Policy{Limit: 10, Window: time.Second}, time.Second)
		require.NoError(t, err)
		require.NoError(t, l.Wait(t.Context())) // leaves at once, next slot at +100 ms
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Wait(ctx) }()
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		wait, ok := l.Reserve(time.Now())
		assert.True(t, ok)
		assert.Equal(t, 100*time.Millisecond, wait, "the cancelled slot is reused")
	})
}

// MaxDelay 0 is a meter: no two admissions closer than one interval.
func TestLeakyMeter(t *testing.T) {
	l, err := limiter.NewLeaky(quota.Policy{Limit: 10, Window: time.Second}, 0)
	require.NoError(t, err)
	var got []bool
	for _, off := range []time.Duration{0, 50, 99, 100, 150, 250} {
		_, ok := l.Reserve(base.Add(off * time.Millisecond))
		got = append(got, ok)
	}
	assert.Equal(t, []bool{true, false, false, true, false, true}, got)
	_, err = limiter.NewLeaky(policy, -time.Second)
	assert.ErrorContains(t, err, "negative")
}
