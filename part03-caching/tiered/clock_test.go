package tiered

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// warm hits l as a hot Local is hit: clockStartReads hits within one tick,
// here all at one instant of a synctest bubble, which starts the clock. (A
// miss reads no clock.)
func warm[V any](l *Local[V]) {
	var v V
	l.Set("warm-up", v)
	for range clockStartReads {
		l.Get("warm-up")
	}
}

// ticking reports whether a goroutine keeps the coarse time (settled after
// synctest.Wait).
func (k *coarseClock) ticking() bool { return k.now.Load() != clockStopped }

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
				warm(l) // starts the clock
				require.Equal(t, !exact, l.clock.ticking(), "the coarse clock runs, unless ExactClock")
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
		// No goroutine: the test sets the coarse time.
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

// The clock goroutine runs only while the Local is hot: a burst of
// clockStartReads hits within one tick starts it, it stops after
// clockRunTicks ticks, or after clockIdleTicks ticks without a hit, the next
// burst starts it again, and Close stops it at once.
func TestLocalClockRunsWhileHot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal[int](t, LocalOptions{TTL: time.Second})
		l.Set("k", 1)
		for range clockStartReads - 1 {
			_, ok := l.Get("k")
			require.True(t, ok)
		}
		assert.False(t, l.clock.ticking(), "one hit short of a burst")
		time.Sleep(ClockResolution)
		_, ok := l.Get("k")
		assert.True(t, ok)
		assert.False(t, l.clock.ticking(), "a tick later the count starts over")
		warm(l)
		assert.True(t, l.clock.ticking(), "a burst starts the clock")
		hitEachTick := func(ticks int) {
			for range ticks {
				time.Sleep(ClockResolution)
				_, ok := l.Get("k")
				require.True(t, ok)
			}
			synctest.Wait()
		}
		hitEachTick(clockRunTicks / 2)
		assert.True(t, l.clock.ticking(), "half its run, a hit every tick")
		hitEachTick(clockRunTicks / 2)
		assert.False(t, l.clock.ticking(), "clockRunTicks ticks after the start, however often it is hit")
		warm(l)
		assert.True(t, l.clock.ticking(), "a burst starts it again")
		time.Sleep((clockIdleTicks + 1) * ClockResolution) // the tick that sees the burst, then the idle ones
		synctest.Wait()
		assert.False(t, l.clock.ticking(), "clockIdleTicks ticks without a hit")
		_, ok = l.Get("k")
		assert.True(t, ok, "a hit on the stopped clock reads the monotonic clock")
		warm(l)
		assert.True(t, l.clock.ticking(), "and the next burst starts it again")
		l.Close()
		synctest.Wait()
		assert.False(t, l.clock.ticking(), "Close stops it at once")
		warm(l)
		assert.True(t, l.clock.ticking(), "the Local stays usable")
	})
}

// A Local hit now and then must not keep a goroutine waking every
// millisecond: each wake-up of an otherwise sleeping process costs more CPU
// than hundreds of clock reads (BenchmarkLocalBarelyUsed). Hit 20 times a
// second for 5 s, the clock never runs. (It ran from the first hit to the
// end: a hit every 50 ms is never 100 ticks without a read.)
func TestLocalClockSleepsWhenBarelyUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal[int](t, LocalOptions{TTL: time.Hour})
		l.Set("k", 1)
		ticking := 0
		for range 100 {
			_, ok := l.Get("k")
			assert.True(t, ok)
			time.Sleep(50 * time.Millisecond)
			synctest.Wait()
			if l.clock.ticking() {
				ticking++
			}
		}
		assert.Zero(t, ticking, "samples, 50 ms after a hit, with the clock goroutine running")
	})
}

// Close racing the hits that start the clock, then Close again: no goroutine
// is left, under -race. (The first version's race, a Close that swapped out a
// stale quit channel while a start stored a new one, left the new goroutine
// running after that Close; this test does not pin that interleaving down.)
func TestLocalClockCloseRacingAStart(t *testing.T) {
	for range 50 {
		synctest.Test(t, func(t *testing.T) {
			l := newLocal[int](t, LocalOptions{TTL: time.Second})
			done := make(chan struct{})
			go func() {
				defer close(done)
				warm(l)
			}()
			l.Close()
			<-done
			l.Close()
			synctest.Wait()
			assert.False(t, l.clock.ticking(), "Close after the start stops it")
		})
	}
}

// The invalidation lease is checked on the same clock as the TTL: a coarse
// time more than ClockWindow behind (a clock goroutine starved that long, or
// a process stopped and resumed before its clock goroutine ran) serves L1
// past the end of the lease, by the lag; with ExactClock it is not served.
// The coarse time is set by hand, as in TestLocalCoarseClockLagBeyondTheWindow:
// a stopped process is not something a test can schedule.
func TestCacheCoarseClockBehindServesPastTheLease(t *testing.T) {
	for _, exact := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			m := newMemRedis(t)
			c := newCache(t, m.client(nil), unitPrefix, newSource(product{"p1", 100}).load,
				func(o *Options[product]) { o.L1.ExactClock = exact })
			_, err := c.Get(t.Context(), "p1")
			require.NoError(t, err)
			synctest.Wait()
			l := c.L1()
			require.False(t, l.clock.ticking(), "no clock goroutine: the test sets the coarse time")
			now := monotonicNow()
			l.servable.Store(now - 1) // the lease ended a nanosecond ago
			l.clock.now.Store(now - int64(ClockWindow+10*time.Millisecond))
			_, served := l.Get("p1")
			l.clock.now.Store(clockStopped)
			assert.False(t, c.Serving(), "the lease is over")
			assert.Equal(t, !exact, served, "ExactClock=%v: L1 served past the lease", exact)
		})
	}
}

// A burst of hits now and then must not buy the clock goroutine a long run:
// 20 bursts of clockStartReads hits, 100 ms apart (2,560 hits a second), and
// 10 ms after each burst the clock has stopped.
func TestLocalClockStopsAfterABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal[int](t, LocalOptions{TTL: time.Hour})
		ticking := 0
		for range 20 {
			warm(l)
			require.True(t, l.clock.ticking(), "a burst starts the clock")
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			if l.clock.ticking() {
				ticking++
			}
			time.Sleep(90 * time.Millisecond)
		}
		assert.Zero(t, ticking, "bursts after which the clock still ran 10 ms later")
	})
}
