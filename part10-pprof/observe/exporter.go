package observe

import (
	"context"
	"fmt"
	"math"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"time"
)

// The runtime/metrics keys the exporter reads. Each stands for a field the
// article reads from runtime.MemStats or runtime.NumGoroutine.
const (
	mGoroutines = "/sched/goroutines:goroutines"          // runtime.NumGoroutine()
	mCreated    = "/sched/goroutines-created:goroutines"  // (none)
	mObjects    = "/memory/classes/heap/objects:bytes"    // MemStats.HeapAlloc
	mUnused     = "/memory/classes/heap/unused:bytes"     // HeapInuse = objects + unused
	mGoal       = "/gc/heap/goal:bytes"                   // gctrace's "MB goal"
	mLive       = "/gc/heap/live:bytes"                   // gctrace's third heap figure
	mCycles     = "/gc/cycles/total:gc-cycles"            // MemStats.NumGC
	mGCTotal    = "/cpu/classes/gc/total:cpu-seconds"     //
	mGCIdle     = "/cpu/classes/gc/mark/idle:cpu-seconds" // idle marking is free: left out, as gctrace does
	mCPUTotal   = "/cpu/classes/total:cpu-seconds"        // GOMAXPROCS × wall time
	mPauses     = "/sched/pauses/total/gc:seconds"        // MemStats.PauseTotalNs, as a histogram
	mGOGC       = "/gc/gogc:percent"                      //
	mLimit      = "/gc/gomemlimit:bytes"                  //
)

var keys = []string{mGoroutines, mCreated, mObjects, mUnused, mGoal, mLive, mCycles, mGCTotal, mGCIdle, mCPUTotal, mPauses, mGOGC, mLimit}

// Snapshot is one read of the runtime's metrics. Counters (cycles, CPU
// seconds, pauses) are totals since the process started; Since turns two
// snapshots into the rates of the interval between them.
type Snapshot struct {
	Goroutines        uint64  // live goroutines
	GoroutinesCreated uint64  // goroutines ever created
	HeapObjects       uint64  // bytes in live and not yet swept objects (MemStats.HeapAlloc)
	HeapInUse         uint64  // bytes in spans holding objects (MemStats.HeapInuse)
	HeapLive          uint64  // bytes the last GC marked live
	HeapGoal          uint64  // the heap size the current GC cycle aims to end at
	GCCycles          uint64  // completed GC cycles
	GCCPU             float64 // GC CPU seconds, idle-time marking left out
	TotalCPU          float64 // CPU seconds available: GOMAXPROCS × wall time
	GOGC              int64   // percent; -1 when GOGC=off
	MemoryLimit       uint64  // GOMEMLIMIT in bytes; math.MaxInt64 when unset
	Pauses            Histogram
}

// Histogram is a copy of a runtime/metrics histogram, in seconds.
type Histogram struct {
	Counts  []uint64
	Buckets []float64 // len(Counts)+1 boundaries
}

// Count is the number of recorded values.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Max is the upper bound of the highest non-empty bucket: every value is
// below it. 0 for an empty histogram.
func (h Histogram) Max() time.Duration {
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] > 0 {
			return seconds(h.Buckets[i+1])
		}
	}
	return 0
}

// Quantile is the upper bound of the bucket holding the q-quantile.
func (h Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank && c > 0 {
			return seconds(h.Buckets[i+1])
		}
	}
	return h.Max()
}

// Sub is h minus an earlier read of the same histogram.
func (h Histogram) Sub(earlier Histogram) Histogram {
	d := Histogram{Counts: slices.Clone(h.Counts), Buckets: h.Buckets}
	if len(earlier.Counts) == len(h.Counts) {
		for i := range d.Counts {
			d.Counts[i] -= earlier.Counts[i]
		}
	}
	return d
}

func seconds(s float64) time.Duration {
	if math.IsInf(s, 1) || s > math.MaxInt64/1e9 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * 1e9)
}

// Interval is what happened between two snapshots.
type Interval struct {
	Cycles        uint64    // GC cycles completed
	GCCPUFraction float64   // GC CPU ÷ CPU available, 0..1
	Pauses        Histogram // stop-the-world pauses of the GC
}

// Since returns the interval from earlier to s.
func (s Snapshot) Since(earlier Snapshot) Interval {
	iv := Interval{Cycles: s.GCCycles - earlier.GCCycles, Pauses: s.Pauses.Sub(earlier.Pauses)}
	if cpu := s.TotalCPU - earlier.TotalCPU; cpu > 0 {
		iv.GCCPUFraction = (s.GCCPU - earlier.GCCPU) / cpu
	}
	return iv
}

// GCCPUFraction is the GC's share of the CPU since the process started: the
// figure gctrace prints as "#%" and MemStats.GCCPUFraction holds.
func (s Snapshot) GCCPUFraction() float64 {
	if s.TotalCPU == 0 {
		return 0
	}
	return s.GCCPU / s.TotalCPU
}

// String is one line in the article's exporter's style, with the pause
// figures runtime/metrics has (a histogram, not a total).
func (s Snapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "goroutines=%d heap_inuse=%.1fMiB heap_objects=%.1fMiB heap_live=%.1fMiB heap_goal=%.1fMiB gc_cycles=%d gc_cpu_since_start=%.1f%% gc_pauses=%d gc_pause_p99<=%v",
		s.Goroutines, mib(s.HeapInUse), mib(s.HeapObjects), mib(s.HeapLive), mib(s.HeapGoal), s.GCCycles,
		100*s.GCCPUFraction(), s.Pauses.Count(), s.Pauses.Quantile(0.99).Round(time.Microsecond))
	return b.String()
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// Exporter reads the runtime's metrics. It is safe for concurrent use.
type Exporter struct {
	mu      sync.Mutex
	samples []metrics.Sample
}

// NewExporter returns an exporter of the metrics Snapshot holds.
func NewExporter() *Exporter {
	e := &Exporter{samples: make([]metrics.Sample, len(keys))}
	for i, k := range keys {
		e.samples[i].Name = k
	}
	return e
}

// Read takes a snapshot. Unlike runtime.ReadMemStats it does not stop the world.
func (e *Exporter) Read() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	metrics.Read(e.samples)
	var s Snapshot
	for _, m := range e.samples {
		switch m.Name {
		case mGoroutines:
			s.Goroutines = u64(m)
		case mCreated:
			s.GoroutinesCreated = u64(m)
		case mObjects:
			s.HeapObjects = u64(m)
			s.HeapInUse += u64(m)
		case mUnused:
			s.HeapInUse += u64(m)
		case mGoal:
			s.HeapGoal = u64(m)
		case mLive:
			s.HeapLive = u64(m)
		case mCycles:
			s.GCCycles = u64(m)
		case mGCTotal:
			s.GCCPU += f64(m)
		case mGCIdle:
			s.GCCPU -= f64(m)
		case mCPUTotal:
			s.TotalCPU = f64(m)
		case mGOGC:
			s.GOGC = int64(u64(m))
		case mLimit:
			s.MemoryLimit = u64(m)
		case mPauses:
			if m.Value.Kind() == metrics.KindFloat64Histogram {
				h := m.Value.Float64Histogram()
				// Buckets never change for a metric (runtime/metrics promises
				// it) and are only read: shared, not copied.
				s.Pauses = Histogram{Counts: slices.Clone(h.Counts), Buckets: h.Buckets}
			}
		}
	}
	return s
}

// u64 and f64 read a sample, 0 if this Go version does not have it.
func u64(m metrics.Sample) uint64 {
	if m.Value.Kind() == metrics.KindUint64 {
		return m.Value.Uint64()
	}
	return 0
}

func f64(m metrics.Sample) float64 {
	if m.Value.Kind() == metrics.KindFloat64 {
		return m.Value.Float64()
	}
	return 0
}

// Run reads a snapshot every interval and hands it to emit with the interval
// since the previous one, until ctx ends.
func (e *Exporter) Run(ctx context.Context, every time.Duration, emit func(Snapshot, Interval)) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev := e.Read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := e.Read()
			emit(s, s.Since(prev))
			prev = s
		}
	}
}
