package pool

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPool pushes b.N no-op items through 2 workers with a buffer of
// 1,024: impl=ours is Pool.Submit (a read lock, a send, counters),
// impl=channel the article's bare channel and workers. One op is one item.
func BenchmarkPool(b *testing.B) {
	b.Run("impl=ours", func(b *testing.B) {
		p, err := New(b.Context(), Config[int]{Workers: 2, Buffer: 1024}, func(context.Context, int) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := p.Submit(b.Context(), i); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Shutdown(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("impl=channel", func(b *testing.B) {
		var logged atomic.Int64
		ctx, cancel := context.WithCancel(b.Context())
		defer cancel()
		var done atomic.Int64
		jobs := articleStartWorkerPool(ctx, 2, 1024, &logged, func(context.Context, articleMessage) error { done.Add(1); return nil })
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			jobs <- articleMessage{Offset: int64(i)}
		}
		for done.Load() < int64(b.N) { // drained, as Shutdown waits for
			time.Sleep(time.Microsecond)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkOverload submits to 2 workers that take 20 µs an item with a
// buffer of 64: the producer spends most of its time blocked, and
// blocked-ns/op says how much.
func BenchmarkOverload(b *testing.B) {
	p, err := New(b.Context(), Config[int]{Workers: 2, Buffer: 64}, func(context.Context, int) error {
		for start := time.Now(); time.Since(start) < 20*time.Microsecond; { // busy: a sleep this short oversleeps
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if err := p.Submit(b.Context(), i); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Shutdown(b.Context()); err != nil {
		b.Fatal(err)
	}
	s := p.Stats()
	b.ReportMetric(float64(s.Blocked.Nanoseconds())/float64(b.N), "blocked-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
