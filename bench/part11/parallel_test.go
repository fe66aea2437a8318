package part11bench

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// parallelismUnit is what RunParallel multiplies SetParallelism by.
func parallelismUnit() int { return runtime.GOMAXPROCS(0) }

// cpuTime is the process's CPU time so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuStart is the CPU time when a benchmark's loop began.
type cpuStart time.Duration

// cpuClock starts counting CPU time for b (call it right before the loop).
func cpuClock(*testing.B) cpuStart { return cpuStart(cpuTime()) }

// report adds cpu-ns/op, the CPU time per operation: a busy machine's
// waits for a core inflate ns/op, not this.
func (c cpuStart) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-time.Duration(c))/float64(b.N), "cpu-ns/op")
	}
}
