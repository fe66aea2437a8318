package overhead

import (
	"bytes"
	"io"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func profileText(t *testing.T, name string) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, pprof.Lookup(name).WriteTo(&b, 1))
	return b.String()
}

// Every profiler starts, lets the workload run, and puts back what it
// changed.
func TestEveryProfilerStartsAndStops(t *testing.T) {
	memRate := runtime.MemProfileRate
	mutex := runtime.SetMutexProfileFraction(-1)
	for _, p := range Profilers {
		r, err := Measure(t.Context(), p, 30*time.Millisecond)
		require.NoError(t, err, p.Name)
		assert.GreaterOrEqual(t, r.Requests, Clients, p.Name)
		assert.Greater(t, r.PerSecond(), 0.0, p.Name)
		assert.Greater(t, r.CPUPerRequest(), time.Duration(0), "%s: the process used CPU", p.Name)
		assert.Equal(t, memRate, runtime.MemProfileRate, "%s restores MemProfileRate", p.Name)
		assert.Equal(t, mutex, runtime.SetMutexProfileFraction(-1), "%s restores the mutex fraction", p.Name)
	}
	_, ok := Lookup("trace")
	assert.True(t, ok)
	_, ok = Lookup("sometimes")
	assert.False(t, ok)
}

// The block and mutex settings make their profiles record the workload's
// hand-offs and its lock. (Measured again until they show, for a machine so
// busy that 100 ms serves a handful of requests.)
func TestBlockAndMutexProfilesSeeTheWorkload(t *testing.T) {
	for _, tt := range []struct{ setting, profile, fn string }{
		{"block-rate-1", "block", "overhead.(*Service).Handle"},     // clients wait for a worker and for the reply
		{"mutex-fraction-1", "mutex", "overhead.(*Service).worker"}, // workers contend on the log's mutex
	} {
		p, ok := Lookup(tt.setting)
		require.True(t, ok)
		deadline := time.Now().Add(time.Minute)
		for {
			_, err := Measure(t.Context(), p, 100*time.Millisecond)
			require.NoError(t, err)
			if strings.Contains(profileText(t, tt.profile), tt.fn) {
				break
			}
			require.True(t, time.Now().Before(deadline), "%s: the %s profile never showed %s", tt.setting, tt.profile, tt.fn)
		}
	}
}

// A CPU profile or trace already running is reported, not silently shared.
func TestMeasureReportsABusyProfiler(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, pprof.StartCPUProfile(&b))
	defer pprof.StopCPUProfile()
	p, _ := Lookup("cpu-100hz")
	_, err := Measure(t.Context(), p, 10*time.Millisecond)
	assert.ErrorIs(t, err, ErrBusy)
	assert.ErrorContains(t, err, "cpu profiling already in use")
}

func TestServiceAnswersEveryRequest(t *testing.T) {
	s := NewService(Workers)
	defer s.Close()
	before := runtime.NumGoroutine()
	n := s.Handle(7)
	assert.Equal(t, len(`{"id":7,"name":"answer","tags":["alpha","bravo","charlie","delta","echo","foxtrot","golf","hotel","india","juliet","kilo","lima"],"score":2.3333333333333335}`)+1, n, "a line of the log")
	assert.GreaterOrEqual(t, before, Parked+Workers)
	assert.True(t, strings.Contains(profileText(t, "goroutine"), "overhead.NewService.func1"), "the parked goroutines are listed")
}

// BenchmarkOverhead is the workload under each profiler: impl=ours is no
// profiling, every other impl one profiler, so make bench-part10 prints each
// one's time per request ÷ none's (1.05× is 5% slower), and the same for
// cpu-ns/op, the process's CPU time per request, which a busy machine does
// not stretch the way it stretches wall time.
func BenchmarkOverhead(b *testing.B) {
	for _, p := range Profilers {
		impl := p.Name
		if impl == "none" {
			impl = "ours"
		}
		b.Run("impl="+impl, func(b *testing.B) {
			s := NewService(Workers)
			defer s.Close()
			stop, err := p.Start()
			if err != nil {
				b.Fatal(err)
			}
			defer stop()
			b.SetParallelism(max(Clients/runtime.GOMAXPROCS(0), 1))
			b.ReportAllocs()
			cpu0, _ := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					s.Handle(i)
				}
			})
			b.StopTimer()
			if cpu1, ok := processCPU(); ok {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkProfileWrite is one heap or goroutine profile written out, what a
// scrape of /debug/pprof/heap or /debug/pprof/goroutine costs the process,
// with the workload's service (and its idle goroutines) alive. cpu-ns/op is
// the whole process's CPU time over the loop ÷ writes: the collections the
// writes' allocations bring on are in it, and nothing else runs. A scrape
// every minute costs this ÷ 60 s of CPU time.
func BenchmarkProfileWrite(b *testing.B) {
	for _, name := range []string{"heap", "goroutine"} {
		b.Run("profile="+name, func(b *testing.B) {
			s := NewService(Workers)
			defer s.Close()
			s.Handle(1)
			b.ReportAllocs()
			cpu0, _ := processCPU()
			for b.Loop() {
				if err := pprof.Lookup(name).WriteTo(io.Discard, 0); err != nil {
					b.Fatal(err)
				}
			}
			if cpu1, ok := processCPU(); ok {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
