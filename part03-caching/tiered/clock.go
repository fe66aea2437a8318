package tiered

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ClockResolution is how often a Local's coarse clock is refreshed while it
// runs. A hit on a hot Local compares the entry's expiry with that clock
// instead of reading the monotonic clock, which on the machines this chapter
// was measured on costs as much as the rest of the hit or more (time.Since
// 23–70 ns; a map lookup under a read lock 22–36 ns).
//
// It costs no TTL precision while the clock keeps up: the coarse time is never
// ahead of the monotonic clock, so a coarse time past the expiry is a miss for
// certain, and a hit whose entry (or whose Cache's invalidation lease) ends
// within ClockWindow of the coarse time reads the monotonic clock to decide.
// Only a clock ClockWindow or more behind lets an entry be served late, by the
// excess: its goroutine waited that long for a processor
// (BenchmarkCoarseClockLag measures the lag with every core busy), or the whole
// process was stopped (SIGSTOP, a paused VM or container) and a hit runs after
// the resume before the clock goroutine does. LocalOptions.ExactClock reads
// the monotonic clock on every hit instead, and has neither window.
const ClockResolution = time.Millisecond

// ClockWindow is how close to an expiry a hit stops trusting the coarse clock.
// The clock's usual lag is under a tick, but its goroutine waits for a
// processor like any other: with every core spinning on hits, Go preempts a
// running goroutine only after 10 ms, and on a loaded 2-core VM the lag
// averaged 10–20 ms and peaked at 34–74 ms (BenchmarkCoarseClockLag, the
// committed run at load average 7–9 and later runs at 15). An entry
// is checked against the monotonic clock for its last ClockWindow of life, so
// hits on an entry with a 1 s TTL pay for the exact clock about 20% of the time.
const ClockWindow = 200 * time.Millisecond

// clockStartReads is how many hits within one ClockResolution start the clock
// goroutine. Below that rate a hit reads the monotonic clock: a goroutine
// woken every millisecond costs a process that would otherwise sleep about
// 35 µs of CPU per wake-up on this chapter's VM (BenchmarkLocalBarelyUsed), the
// price of several hundred clock reads.
const clockStartReads = 256

// clockRunTicks is how many ticks the clock goroutine runs at most (100 ms at
// ClockResolution). A Local still hit at clockStartReads per tick starts it
// again at once; one hit less often stops paying for it.
const clockRunTicks = 100

// clockIdleTicks is how many ticks in a row without a hit stop the clock
// goroutine before clockRunTicks: a burst of hits now and then buys it a few
// ticks, not a whole run.
const clockIdleTicks = 2

// coarseClock is nanoseconds since epoch, refreshed every ClockResolution by a
// goroutine. The goroutine starts when clockStartReads hits fall within one
// ClockResolution, runs clockRunTicks ticks, or until clockIdleTicks ticks
// pass without a hit, or until stopped, and stops; until
// the next burst of hits starts it again, hits read the monotonic clock. Each
// Local has its own, so a Local used inside a testing/synctest bubble keeps the
// bubble's time, and the goroutine ends by itself at most clockRunTicks ticks
// after it started, so the bubble can end without Local.Close.
type coarseClock struct {
	now  atomic.Int64 // clockStopped while no goroutine keeps it
	used atomic.Bool  // a hit read now since the last tick
	// The current burst of hits read on the monotonic clock: when it began and
	// how many. Updated without a lock: a lost update only delays the start.
	burst, reads atomic.Int64
	mu           sync.Mutex
	quit         chan struct{} // the running goroutine's; nil when none runs or it was stopped
}

// read returns the coarse time, or the monotonic time while the clock is
// stopped, and starts the clock when the hits come in a burst.
func (k *coarseClock) read() int64 {
	if n := k.now.Load(); n != clockStopped {
		if !k.used.Load() { // read before write: one store per tick, not per hit
			k.used.Store(true)
		}
		return n
	}
	n := monotonicNow()
	if b := k.burst.Load(); n < b || n-b >= int64(ClockResolution) { // n < b: a bubble's time, before epoch
		k.burst.Store(n)
		k.reads.Store(1)
	} else if k.reads.Add(1) >= clockStartReads {
		k.start(n)
	}
	return n
}

func (k *coarseClock) start(n int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.quit != nil {
		return
	}
	k.quit = make(chan struct{})
	k.used.Store(true)
	k.now.Store(n)
	go k.keep(k.quit)
}

// keep refreshes now. Its last store is always clockStopped, so a coarse time
// is never left behind by a goroutine that no longer runs.
func (k *coarseClock) keep(quit chan struct{}) {
	t := time.NewTicker(ClockResolution)
	defer func() {
		t.Stop()
		k.mu.Lock()
		k.now.Store(clockStopped)
		if k.quit == quit {
			k.quit = nil
		}
		k.mu.Unlock()
	}()
	idle := 0
	for range clockRunTicks {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		if k.used.Swap(false) {
			idle = 0
		} else if idle++; idle == clockIdleTicks {
			return
		}
		k.now.Store(monotonicNow())
	}
}

// stop tells the clock goroutine, if one runs, to end, without waiting for it.
func (k *coarseClock) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.quit != nil {
		close(k.quit)
		k.quit = nil
	}
}

// clockStopped marks a coarse clock no goroutine keeps. time.Since(epoch)
// never reaches it: inside a testing/synctest bubble it is negative (the fake
// clock starts in 2000), but by decades, not by 292 years.
const clockStopped = math.MinInt64

// monotonicNow is nanoseconds since epoch on the monotonic clock.
func monotonicNow() int64 { return int64(time.Since(epoch)) }
