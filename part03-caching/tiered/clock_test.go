package tiered

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// The coarse clock changes no expiry: whatever the offset of the Set inside a
// tick and whichever goroutine runs first at a tick, an entry is served until
// exactly its TTL, as on the exact clock.
func TestLocalCoarseClockKeepsExactExpiries(t *testing.T) {
	const ttl = 20 * time.Millisecond
	step := ClockResolution / 10
	for _, exact := range []bool{false, true} {
		for offset := time.Duration(0); offset < ClockResolution; offset += 3 * step {
			synctest.Test(t, func(t *testing.T) {
				l := newLocal[int](t, LocalOptions{TTL: ttl, NoJitter: true, ExactClock: exact})
				l.Get("warm-up") // starts the clock
				time.Sleep(offset)
				l.Set("k", 1)
				set := time.Now()
				var lastHit, firstMiss time.Duration
				for time.Since(set) < ttl+3*ClockResolution {
					time.Sleep(step)
					_, ok := l.Get("k")
					switch age := time.Since(set); {
					case ok:
						lastHit = age
					case firstMiss == 0:
						firstMiss = age
					}
				}
				assert.Equal(t, ttl-step, lastHit, "exact=%v offset %v", exact, offset)
				assert.Equal(t, ttl, firstMiss, "exact=%v offset %v", exact, offset)
			})
		}
	}
}

// A coarse clock behind by less than ClockWindow decides nothing near an
// expiry: an entry expired 10 ms ago is a miss with the clock 50 ms behind.
// Behind by more than the window (a clock goroutine that waited that long to
// run), a hit trusts it, and the entry is served late: the documented limit.
func TestLocalCoarseClockLagBeyondTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal[int](t, LocalOptions{TTL: time.Second, NoJitter: true})
		l.Set("k", 1)
		time.Sleep(time.Second + 10*time.Millisecond) // expired 10 ms ago
		l.clock.running.Store(true)                   // no goroutine: the test sets the coarse time
		defer l.clock.running.Store(false)
		for _, tc := range []struct {
			behind time.Duration
			served bool
		}{
			{0, false},
			{ClockResolution, false},
			{50 * time.Millisecond, false},
			{ClockWindow, false},
			{ClockWindow + 20*time.Millisecond, true},
		} {
			l.clock.now.Store(monotonicNow() - int64(tc.behind))
			_, ok := l.Get("k")
			assert.Equal(t, tc.served, ok, "coarse clock %v behind", tc.behind)
		}
		l.clock.now.Store(clockStopped)
	})
}

// The clock goroutine runs only while the Local is hit: it stops after
// clockIdleTicks ticks without a read, the next read starts it again, and
// Close stops it at once.
func TestLocalClockStopsWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal[int](t, LocalOptions{TTL: time.Second})
		l.Set("k", 1)
		assert.False(t, l.clock.running.Load(), "a Set reads the monotonic clock")
		_, ok := l.Get("k")
		assert.True(t, ok)
		assert.True(t, l.clock.running.Load(), "a hit starts the coarse clock")
		time.Sleep(clockIdleTicks * ClockResolution / 2)
		_, ok = l.Get("k")
		assert.True(t, ok)
		synctest.Wait()
		assert.True(t, l.clock.running.Load(), "read half an idle period ago")
		time.Sleep((clockIdleTicks + 1) * ClockResolution)
		synctest.Wait()
		assert.False(t, l.clock.running.Load(), "idle for clockIdleTicks ticks")
		_, ok = l.Get("k")
		assert.True(t, ok, "a read on the stopped clock reads the monotonic clock")
		assert.True(t, l.clock.running.Load(), "and starts the clock again")
		l.Close()
		synctest.Wait()
		assert.False(t, l.clock.running.Load(), "Close stops it at once")
	})
}
