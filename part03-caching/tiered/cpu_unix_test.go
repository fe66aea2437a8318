//go:build unix

package tiered

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkLocalBarelyUsed is the whole process's CPU time per hit on a Local
// hit 20 times a second (one op is a hit and a 50 ms sleep; run it with
// -benchtime 40x or so): what keeping the coarse clock costs where it saves
// next to nothing. A clock goroutine woken every ClockResolution would cost
// one wake-up of an otherwise sleeping process per millisecond.
func BenchmarkLocalBarelyUsed(b *testing.B) {
	for _, exact := range []bool{false, true} {
		name := "clock=coarse"
		if exact {
			name = "clock=exact"
		}
		b.Run(name, func(b *testing.B) {
			l, _ := NewLocal[int](LocalOptions{TTL: time.Hour, ExactClock: exact})
			defer l.Close()
			l.Set("k", 1)
			start := cpuTime(b)
			for b.Loop() {
				if _, ok := l.Get("k"); !ok {
					b.Fatal("miss")
				}
				time.Sleep(50 * time.Millisecond)
			}
			b.ReportMetric(float64(cpuTime(b)-start)/1e3/float64(b.N), "cpu-µs/hit")
		})
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
