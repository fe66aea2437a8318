package part11bench

import (
	"fmt"
	"os"
	"runtime"
	"strings"
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

// TestMain prints the load average before and after the package's
// benchmarks as comment lines of the raw output, so a committed run says
// how busy the machine was.
func TestMain(m *testing.M) {
	fmt.Println("# load average before:", loadAvg())
	code := m.Run()
	fmt.Println("# load average after:", loadAvg())
	os.Exit(code)
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute figures ("unknown" off Linux).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
