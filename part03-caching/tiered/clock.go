package tiered

import (
	"math"
	"sync/atomic"
	"time"
)

// ClockResolution is how often a Local's coarse clock is refreshed. Most L1
// hits compare the entry's expiry with that clock instead of reading the
// monotonic clock, which on the machines this chapter was measured on costs
// about as much as the rest of the hit (time.Since 23–26 ns; a map lookup
// under a read lock 22–36 ns).
//
// It costs no TTL precision while the clock keeps up: the coarse time is never
// ahead of the monotonic clock, so a coarse time past the expiry is a miss for
// certain, and a hit whose entry (or whose Cache's invalidation lease) ends
// within ClockWindow of the coarse time reads the monotonic clock to decide.
// Only a clock ClockWindow or more behind, because its goroutine waited that
// long to be scheduled, lets an entry be served late, by the excess.
// BenchmarkCoarseClockLag measures the lag with every core busy.
// LocalOptions.ExactClock reads the monotonic clock on every hit instead.
const ClockResolution = time.Millisecond

// ClockWindow is how close to an expiry a hit stops trusting the coarse clock.
// The clock's usual lag is under a tick, but its goroutine waits for a
// processor like any other: with every core spinning on hits, Go preempts a
// running goroutine only after 10 ms, and on a loaded 2-core VM the lag
// averaged 10–11 ms and peaked at 51 ms (BenchmarkCoarseClockLag, in the
// chapter's committed run). An entry is
// checked against the monotonic clock for its last ClockWindow of life, so hits
// on an entry with a 1 s TTL pay for the exact clock about 20% of the time.
const ClockWindow = 200 * time.Millisecond

// clockIdleTicks is how many ticks without a read stop the clock goroutine
// (100 ms at ClockResolution): an idle Local costs no wake-ups.
const clockIdleTicks = 100

// coarseClock is nanoseconds since epoch, refreshed every ClockResolution by a
// goroutine that runs while the clock is read and stops after clockIdleTicks
// ticks without a read, or when stopped; the next read starts it again. Each
// Local has its own, so a Local used inside a testing/synctest bubble keeps the
// bubble's time (and must be closed before the bubble ends).
type coarseClock struct {
	now     atomic.Int64 // clockStopped while no goroutine keeps it
	used    atomic.Bool  // read since the last tick
	running atomic.Bool  // a goroutine keeps now, or is about to
	quit    atomic.Pointer[chan struct{}]
}

// read returns the coarse time. It starts the clock goroutine when none runs,
// and reads the monotonic clock itself while another reader is starting it.
func (k *coarseClock) read() int64 {
	if n := k.now.Load(); n != clockStopped {
		if !k.used.Load() { // read before write: one store per tick, not per hit
			k.used.Store(true)
		}
		return n
	}
	n := monotonicNow()
	if k.running.CompareAndSwap(false, true) {
		quit := make(chan struct{})
		k.quit.Store(&quit)
		k.used.Store(true)
		k.now.Store(n)
		go k.keep(quit)
	}
	return n
}

func (k *coarseClock) keep(quit chan struct{}) {
	t := time.NewTicker(ClockResolution)
	defer func() {
		t.Stop()
		k.now.Store(clockStopped) // readers fall back to the monotonic clock and start a new keeper
		k.running.Store(false)
	}()
	idle := 0
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		k.now.Store(monotonicNow())
		if k.used.Swap(false) {
			idle = 0
		} else if idle++; idle >= clockIdleTicks {
			return
		}
	}
}

// stop ends the clock goroutine, if one runs, without waiting for it.
func (k *coarseClock) stop() {
	if q := k.quit.Swap(nil); q != nil {
		close(*q)
	}
}

// clockStopped marks a coarse clock no goroutine keeps. time.Since(epoch)
// never reaches it: inside a testing/synctest bubble it is negative (the fake
// clock starts in 2000), but by decades, not by 292 years.
const clockStopped = math.MinInt64

// monotonicNow is nanoseconds since epoch on the monotonic clock.
func monotonicNow() int64 { return int64(time.Since(epoch)) }
