package tiered

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func benchKeys() []string {
	k := make([]string, 1024)
	for i := range k {
		k[i] = fmt.Sprintf("product:%d", i)
	}
	return k
}

func BenchmarkLocalGetHit(b *testing.B) {
	for _, exact := range []bool{false, true} {
		name := "clock=coarse"
		if exact {
			name = "clock=exact"
		}
		b.Run(name, func(b *testing.B) {
			l, _ := NewLocal[[]byte](LocalOptions{MaxEntries: 10_000, TTL: time.Hour, ExactClock: exact})
			defer l.Close()
			keys := benchKeys()
			for _, k := range keys {
				l.Set(k, []byte("v"))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := l.Get(keys[i&1023]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}

func BenchmarkLocalSet(b *testing.B) {
	l, _ := NewLocal[[]byte](LocalOptions{MaxEntries: 512, TTL: time.Hour}) // half the keys: Set evicts
	defer l.Close()
	keys := benchKeys()
	v := []byte("v")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Set(keys[i&1023], v)
		i++
	}
}

// BenchmarkCacheGetL1Hit is the whole Cache.Get on an L1 hit: no Redis round trip.
func BenchmarkCacheGetL1Hit(b *testing.B) {
	mr := miniredis.RunT(b)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer func() { _ = rdb.Close() }()
	ctx := context.Background()
	c, err := New(ctx, Options[[]byte]{
		Redis: rdb, Prefix: "bench:",
		Load: func(context.Context, string) ([]byte, error) { return []byte("v"), nil },
		L1:   LocalOptions{TTL: time.Hour},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	keys := benchKeys()
	for _, k := range keys {
		if _, err := c.Get(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Get(ctx, keys[i&1023]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

var clockSink int64

// BenchmarkClockNow, BenchmarkClockSince and BenchmarkClockCoarse are what a
// hit pays for its clock: time.Now reads the wall clock and the monotonic clock,
// time.Since only the latter (ExactClock), the coarse clock one atomic load.
func BenchmarkClockNow(b *testing.B) {
	for b.Loop() {
		clockSink += time.Now().UnixNano()
	}
}

func BenchmarkClockSince(b *testing.B) {
	for b.Loop() {
		clockSink += int64(time.Since(epoch))
	}
}

func BenchmarkClockCoarse(b *testing.B) {
	l, _ := NewLocal[int](LocalOptions{TTL: time.Second})
	defer l.Close()
	for b.Loop() {
		clockSink += l.clock.read()
	}
}

// BenchmarkCoarseClockLag measures how far the coarse clock is behind the
// monotonic clock when a hit reads it, with GOMAXPROCS goroutines spinning on
// L1 hits beside the sampler, so the clock goroutine competes for a processor.
// It reports the mean lag, the largest, and the share of samples more than a
// tick and more than ClockWindow behind (a hit could then serve an entry late).
func BenchmarkCoarseClockLag(b *testing.B) {
	l, _ := NewLocal[int](LocalOptions{TTL: time.Hour})
	defer l.Close()
	l.Set("k", 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					l.Get("k")
				}
			}
		})
	}
	var sum, worst, late, beyond int64
	n := int64(0)
	for b.Loop() {
		coarse := l.clock.read()
		lag := monotonicNow() - coarse
		sum += lag
		worst = max(worst, lag)
		if lag > int64(ClockResolution) {
			late++
		}
		if lag > int64(ClockWindow) {
			beyond++
		}
		n++
	}
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(sum)/float64(n)/1e3, "mean-lag-µs")
	b.ReportMetric(float64(worst)/1e3, "max-lag-µs")
	b.ReportMetric(float64(late)/float64(n), "over-a-tick")
	b.ReportMetric(float64(beyond)/float64(n), "over-the-window")
}
