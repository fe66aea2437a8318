package lock

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// renew runs on a timer, not a goroutine per lock: it renews every third of
// the TTL while renewals succeed, a stop waits for a renewal in progress, and
// none runs after the stop or after the loss.
func TestRenewTimer(t *testing.T) {
	const ttl = 3 * time.Second
	t.Run("every third of the TTL, none after the stop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g := newGuard(t.Context(), time.Now().Add(ttl))
			var calls atomic.Int32
			stop := renew(g, ttl, func() { calls.Add(1); g.extend(time.Now().Add(ttl)) })
			time.Sleep(10*ttl/3 + ttl/6) // renewals at 1, 2, …, 10 s
			stop()
			assert.NoError(t, g.stop())
			assert.Equal(t, int32(10), calls.Load())
			time.Sleep(10 * ttl)
			assert.Equal(t, int32(10), calls.Load(), "no renewal after the stop")
		})
	})
	t.Run("a stop waits for the renewal in progress", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g := newGuard(t.Context(), time.Now().Add(ttl))
			var finished atomic.Bool
			stop := renew(g, ttl, func() {
				time.Sleep(ttl / 10) // a slow master
				g.extend(time.Now().Add(ttl))
				finished.Store(true)
			})
			time.Sleep(ttl/3 + ttl/20) // the first renewal is under way
			assert.False(t, finished.Load())
			stop()
			assert.True(t, finished.Load(), "stop returned before the renewal it waited for")
			assert.NoError(t, g.stop())
		})
	})
	t.Run("none after the loss", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g := newGuard(t.Context(), time.Now().Add(ttl))
			var calls atomic.Int32
			stop := renew(g, ttl, func() { calls.Add(1); g.lose(errors.New("refused")) })
			time.Sleep(10 * ttl)
			assert.Equal(t, int32(1), calls.Load())
			stop()
			assert.ErrorIs(t, g.stop(), ErrLockLost)
		})
	})
}
