// Package gclab runs one allocation workload in child processes under
// different GOGC and GOMEMLIMIT settings with GODEBUG=gctrace=1, reads their
// gctrace lines (package gctrace), records them, and draws the heap over time.
//
// The child is this same program: a binary that calls MaybeChild first thing
// in main (and a test binary, first thing in TestMain) becomes the workload
// when the environment says so, and exits.
package gclab

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"time"
)

// Workload is what a child does: it fills a live set of LiveMiB, then
// allocates AllocMiB more in objects of 512 B to 3.5 KiB, one in four of which
// replaces an object of the live set (the rest is garbage at once): a service
// with a cache and per-request garbage, in one loop.
type Workload struct {
	AllocMiB int `json:"alloc_mib"`
	LiveMiB  int `json:"live_mib"`
	// Idle is a pause before the allocation starts (for showing what the
	// since-start percentage does).
	Idle time.Duration `json:"idle,omitempty"`
	// GoalSteps replaces the loop with three forced collections: with
	// LiveMiB live, with nothing live, and once more; Stats.Goals holds
	// /gc/heap/goal:bytes read after each.
	GoalSteps bool `json:"goal_steps,omitempty"`
}

func (w Workload) String() string {
	if w.GoalSteps {
		return fmt.Sprintf("goal steps, %d MiB live", w.LiveMiB)
	}
	s := fmt.Sprintf("%d MiB allocated, %d MiB live", w.AllocMiB, w.LiveMiB)
	if w.Idle > 0 {
		s += fmt.Sprintf(", after %v idle", w.Idle)
	}
	return s
}

// Stats is what the child reports on its standard output when done.
type Stats struct {
	Wall        time.Duration `json:"wall"`      // the allocation loop (Idle not included)
	Cycles      uint64        `json:"cycles"`    // /gc/cycles/total:gc-cycles
	GCCPU       float64       `json:"gc_cpu"`    // GC CPU ÷ CPU available since start, idle marking left out
	HeapGoalEnd uint64        `json:"heap_goal"` // /gc/heap/goal:bytes at the end
	Goals       []uint64      `json:"goals,omitempty"`
	MemoryLimit uint64        `json:"memory_limit"` // /gc/gomemlimit:bytes
	PeakRSS     int64         `json:"peak_rss"`     // largest resident set, bytes, the child's own (VmHWM, Linux; 0 elsewhere): close to what a container's memory limit charges
}

// EnvChild names the environment variable that makes MaybeChild run a
// workload (its value, as JSON) instead of returning.
const EnvChild = "PART10_GCLAB_CHILD"

// MaybeChild runs the workload in EnvChild and exits, if the variable is set;
// otherwise it returns at once.
func MaybeChild() {
	spec, ok := os.LookupEnv(EnvChild)
	if !ok {
		return
	}
	var w Workload
	if err := json.Unmarshal([]byte(spec), &w); err != nil {
		fmt.Fprintf(os.Stderr, "gclab child: %s=%q: %v\n", EnvChild, spec, err)
		os.Exit(2)
	}
	s := w.run()
	s.PeakRSS = peakRSS()
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		fmt.Fprintln(os.Stderr, "gclab child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func (w Workload) run() Stats {
	if w.GoalSteps {
		return w.goalSteps()
	}
	time.Sleep(w.Idle)
	start := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	live := make([][]byte, max(w.LiveMiB<<10/2, 1)) // 2 KiB on average
	next := func() []byte {
		b := make([]byte, 512+rng.IntN(3073))
		b[0] = 1
		return b
	}
	for i := range live {
		live[i] = next()
	}
	for allocated := int64(0); allocated < int64(w.AllocMiB)<<20; {
		b := next()
		allocated += int64(len(b))
		if rng.IntN(4) == 0 {
			live[rng.IntN(len(live))] = b
		}
	}
	s := read()
	s.Wall = time.Since(start)
	runtime.KeepAlive(live)
	return s
}

func (w Workload) goalSteps() Stats {
	var goals []uint64
	live := make([][]byte, w.LiveMiB)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	goals = append(goals, read().HeapGoalEnd)
	runtime.KeepAlive(live) // live until here; unreachable from now on
	runtime.GC()
	goals = append(goals, read().HeapGoalEnd)
	runtime.GC()
	goals = append(goals, read().HeapGoalEnd)
	s := read()
	s.Goals = goals
	return s
}

func read() Stats {
	ms := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/gc/mark/idle:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/gc/gomemlimit:bytes"},
	}
	metrics.Read(ms)
	s := Stats{Cycles: ms[0].Value.Uint64(), HeapGoalEnd: ms[4].Value.Uint64(), MemoryLimit: ms[5].Value.Uint64()}
	if total := ms[3].Value.Float64(); total > 0 {
		s.GCCPU = (ms[1].Value.Float64() - ms[2].Value.Float64()) / total
	}
	return s
}
