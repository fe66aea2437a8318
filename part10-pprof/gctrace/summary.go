package gctrace

import (
	"slices"
	"time"
)

// Summary sums up a run's cycles.
type Summary struct {
	Cycles, Forced int
	// CPUPercent is the last line's: the GC's share of CPU since the program
	// started, as the runtime prints it.
	CPUPercent int
	// WindowCPU is the GC's share of the CPU available from the first
	// cycle's start to the last cycle's end (GOMAXPROCS × wall), from the
	// lines' CPU times, idle-time marking left out: the figure to alert on.
	WindowCPU float64
	// SinceStartCPU is the same share from the program's start: what the
	// last line's CPUPercent says, before truncation.
	SinceStartCPU float64
	// PauseTotal, PauseMax and PauseP99 are over the stop-the-world pauses
	// (sweep termination + mark termination) of every cycle.
	PauseTotal, PauseMax, PauseP99 time.Duration
	PeakHeap                       int64 // MB: the largest heap at a cycle's start or end
	LastLive, LastGoal             int64 // MB: the last cycle's live heap and goal
}

// Summarize sums up cycles, which must be in the order they were printed.
func Summarize(cycles []Cycle) Summary {
	var s Summary
	if len(cycles) == 0 {
		return s
	}
	var cpu, all time.Duration
	pauses := make([]time.Duration, 0, len(cycles))
	for i, c := range cycles {
		s.Cycles++
		if c.Forced {
			s.Forced++
		}
		all += c.GCCPU()
		if i > 0 {
			cpu += c.GCCPU()
		}
		pauses = append(pauses, c.Pause())
		s.PauseTotal += c.Pause()
		s.PeakHeap = max(s.PeakHeap, c.HeapStart, c.HeapEnd)
	}
	first, last := cycles[0], cycles[len(cycles)-1]
	s.CPUPercent = last.CPUPercent
	s.LastLive, s.LastGoal = last.HeapLive, last.Goal
	end := last.At + last.Wall()
	if p := time.Duration(last.P); end > 0 && p > 0 {
		s.SinceStartCPU = float64(all) / float64(end*p)
		if window := end - (first.At + first.Wall()); len(cycles) > 1 && window > 0 {
			s.WindowCPU = float64(cpu) / float64(window*p)
		}
	}
	slices.Sort(pauses)
	s.PauseMax = pauses[len(pauses)-1]
	s.PauseP99 = pauses[min(len(pauses)-1, (len(pauses)*99+99)/100-1)]
	return s
}
