package observe

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The article's Four Golden Signals table gives runtime.MemStats as the Go
// source of "CPU%, memory%, goroutine count". MemStats has memory figures and
// the GC's share of the CPU since start; it has no goroutine count
// (runtime.NumGoroutine, or /sched/goroutines:goroutines) and no process
// CPU%.
func TestArticleMemStatsHasNoGoroutineCountOrCPU(t *testing.T) {
	var fields []string
	typ := reflect.TypeFor[runtime.MemStats]()
	for i := range typ.NumField() {
		fields = append(fields, typ.Field(i).Name)
	}
	for _, f := range fields {
		assert.NotContains(t, strings.ToLower(f), "goroutine", f)
	}
	var cpu []string
	for _, f := range fields {
		if strings.Contains(f, "CPU") {
			cpu = append(cpu, f)
		}
	}
	assert.Equal(t, []string{"GCCPUFraction"}, cpu, "the only CPU figure is the GC's share")
	assert.Positive(t, NewExporter().Read().Goroutines, "the exporter has the count")
}

// "CPU sampling (100Hz)": the CPU profile's period is 10 ms of CPU time.
func TestCPUProfileSamplesAt100Hz(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, pprof.StartCPUProfile(&b))
	time.Sleep(10 * time.Millisecond)
	pprof.StopCPUProfile()
	p, err := profile.ParseData(b.Bytes())
	require.NoError(t, err)
	assert.Equal(t, "cpu", p.PeriodType.Type)
	assert.Equal(t, "nanoseconds", p.PeriodType.Unit)
	assert.Equal(t, int64(10*time.Millisecond), p.Period, "one sample per 10 ms of CPU: 100 Hz")
}

// articleExporterLoop has the shape of the article's RuntimeMetricsExporter:
// a goroutine ranging over a ticker's channel, with no way to end it.
func articleExporterLoop(interval time.Duration, w io.Writer) {
	go func() {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for range ticker.C {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintf(w, "goroutines=%d heap_inuse=%dMiB\n", runtime.NumGoroutine(), ms.HeapInuse>>20)
		}
	}()
}

// The article's exporter (and its leak detector's time.Tick loop) run until
// the process exits: Start returns nothing to stop them with, so a test, a
// reload or a second Start leaves them running. This test's TestMain lets
// this one goroutine outlive the tests; Exporter.Run ends with its context
// (TestRunStopsWithItsContext).
func TestArticleExporterCannotBeStopped(t *testing.T) {
	articleExporterLoop(time.Hour, io.Discard) // the hour keeps its ReadMemStats out of the other tests
	running := func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "observe.articleExporterLoop.func1")
	}
	require.Eventually(t, running, 30*time.Second, time.Millisecond, "the loop starts")
	time.Sleep(10 * time.Millisecond)
	assert.True(t, running(), "and keeps running, with nothing to stop it")
}
