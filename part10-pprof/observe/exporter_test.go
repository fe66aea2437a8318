package observe

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

var sink [][]byte

// The snapshot follows what the process does: goroutines parked, memory
// retained, a GC run.
func TestSnapshotFollowsTheProcess(t *testing.T) {
	e := NewExporter()
	runtime.GC() // before, like after, counts live objects only
	before := e.Read()
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { <-release })
	}
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	runtime.GC()
	after := e.Read()
	close(release)
	wg.Wait()
	sink = nil

	// Not before.Goroutines+200: an earlier test's goroutines may have ended
	// since before was read.
	assert.GreaterOrEqual(t, after.Goroutines, uint64(200), "the parked goroutines")
	assert.GreaterOrEqual(t, after.GoroutinesCreated, before.GoroutinesCreated+200)
	assert.GreaterOrEqual(t, after.HeapObjects, before.HeapObjects+60<<20, "64 MiB retained")
	assert.GreaterOrEqual(t, after.HeapInUse, after.HeapObjects)
	assert.GreaterOrEqual(t, after.HeapLive, uint64(60<<20))
	assert.Greater(t, after.HeapGoal, after.HeapLive)
	assert.Greater(t, after.GCCycles, before.GCCycles)
	assert.Greater(t, after.Pauses.Count(), before.Pauses.Count(), "a GC has two stop-the-world pauses")
	iv := after.Since(before)
	assert.Equal(t, after.GCCycles-before.GCCycles, iv.Cycles)
	assert.Equal(t, after.Pauses.Count()-before.Pauses.Count(), iv.Pauses.Count())
	assert.Greater(t, iv.GCCPUFraction, 0.0)
	assert.LessOrEqual(t, iv.GCCPUFraction, 1.0)
	assert.InDelta(t, 0.5, after.GCCPUFraction(), 0.5)
	assert.Greater(t, after.Pauses.Max(), time.Duration(0))
	assert.LessOrEqual(t, after.Pauses.Quantile(0.5), after.Pauses.Max())
	if os.Getenv("GOGC") == "" {
		assert.Equal(t, int64(100), after.GOGC, "the default GOGC")
	}
	assert.Contains(t, after.String(), "goroutines=")
}

// pausesOther counts the runtime's stop-the-world pauses that were not the
// GC's.
func pausesOther() uint64 {
	s := []metrics.Sample{{Name: "/sched/pauses/total/other:seconds"}}
	metrics.Read(s)
	var n uint64
	for _, c := range s[0].Value.Float64Histogram().Counts {
		n += c
	}
	return n
}

// runtime.ReadMemStats, which the article's exporter calls, stops the world
// each time; a runtime/metrics read does not.
func TestReadMemStatsStopsTheWorldAndTheExporterDoesNot(t *testing.T) {
	const n = 200
	var ms runtime.MemStats
	before := pausesOther()
	for range n {
		runtime.ReadMemStats(&ms)
	}
	memstats := pausesOther() - before
	e := NewExporter()
	before = pausesOther()
	for range n {
		e.Read()
	}
	exporter := pausesOther() - before
	t.Logf("stop-the-world pauses for %d reads: ReadMemStats %d, Exporter.Read %d", n, memstats, exporter)
	assert.GreaterOrEqual(t, memstats, uint64(n))
	assert.Less(t, exporter, uint64(n/10), "anything here is another goroutine's doing")
}

func TestHistogram(t *testing.T) {
	h := Histogram{Counts: []uint64{0, 3, 1, 0}, Buckets: []float64{0, 1e-6, 1e-5, 1e-4, 1e-3}}
	assert.Equal(t, uint64(4), h.Count())
	assert.Equal(t, 100*time.Microsecond, h.Max())
	assert.Equal(t, 10*time.Microsecond, h.Quantile(0.5))
	assert.Equal(t, 100*time.Microsecond, h.Quantile(0.99))
	d := h.Sub(Histogram{Counts: []uint64{0, 2, 0, 0}, Buckets: h.Buckets})
	assert.Equal(t, []uint64{0, 1, 1, 0}, d.Counts)
	assert.Equal(t, []uint64{0, 3, 1, 0}, h.Counts, "Sub leaves h alone")
	var empty Histogram
	assert.Zero(t, empty.Max())
	assert.Zero(t, empty.Quantile(0.99))
}

// Run emits once per interval and returns when its context ends, on a fake
// clock.
func TestRunStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var got []Snapshot
		done := make(chan struct{})
		go func() {
			NewExporter().Run(ctx, 15*time.Second, func(s Snapshot, _ Interval) { got = append(got, s) })
			close(done)
		}()
		time.Sleep(61 * time.Second)
		synctest.Wait()
		assert.Len(t, got, 4, "15 s, 30 s, 45 s, 60 s")
		cancel()
		<-done
	})
}

// BenchmarkRead is one snapshot: the exporter's runtime/metrics read
// (impl=ours) beside the article's runtime.ReadMemStats, which also stops
// the world each time.
func BenchmarkRead(b *testing.B) {
	b.Run("impl=ours", func(b *testing.B) {
		e := NewExporter()
		b.ReportAllocs()
		for b.Loop() {
			e.Read()
		}
	})
	b.Run("impl=readmemstats", func(b *testing.B) {
		var ms runtime.MemStats
		b.ReportAllocs()
		for b.Loop() {
			runtime.ReadMemStats(&ms)
		}
	})
}
