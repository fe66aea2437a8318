package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part05-kafka/pool"
)

// backpressureWindow is how long each run of the experiment lasts.
const backpressureWindow = 500 * time.Millisecond

// backpressureDemo runs a producer that can go faster than the workers,
// into Pool (a blocking Submit) and into the article's loop (a non-blocking
// send that sleeps 10 ms when the buffer is full), with a small buffer and
// with -buffer.
func backpressureDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== Backpressure: a producer as fast as it can go, %d workers at 1 ms a message, %v per run ==\n", o.workers, backpressureWindow)
	tw := table(w)
	fmt.Fprintln(tw, "producer\tbuffer\tbuffer holds\tprocessed\trate\tproducer blocked\tblocked sends\tmax queue depth\twarnings logged")
	for _, buffer := range []int{o.workers, o.buffer} {
		o := o
		o.buffer = buffer
		holds := fmt.Sprintf("%.1f ms of work", float64(buffer)/float64(o.workers))
		s, took, err := submitRun(ctx, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "pool.Submit: blocks while full\t%d\t%s\t%d\t%s\t%.0f%% of the time\t%d\t%d\t0\n", buffer, holds, s.Processed, rate(s.Processed, took),
			100*s.Blocked.Seconds()/took.Seconds(), s.BlockedSubmits, s.MaxDepth)
		var done, warnings atomic.Int64
		articleTook, err := articleLoop(ctx, o, &done, &warnings)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "article: send, or sleep 10 ms\t%d\t%s\t%d\t%s\t-\t-\t-\t%d\n", buffer, holds, done.Load(), rate(done.Load(), articleTook), warnings.Load())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "a blocking send keeps the workers busy (%d at 1 ms each: %d/s at most); the sleep-and-retry loop leaves them idle whenever\n", o.workers, o.workers*1000)
	fmt.Fprintf(w, "the buffer holds less than its 10 ms sleep of their work, and logs a warning per sleep.\n\n")
	return nil
}

// submitRun feeds Pool for backpressureWindow and drains it.
func submitRun(ctx context.Context, o options) (pool.Stats, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, backpressureWindow)
	defer cancel()
	p, err := pool.New(ctx, pool.Config[int64]{Workers: o.workers, Buffer: o.buffer}, func(context.Context, int64) error {
		time.Sleep(time.Millisecond)
		return nil
	})
	if err != nil {
		return pool.Stats{}, 0, err
	}
	start := time.Now()
	for i := int64(0); p.Submit(rctx, i) == nil; i++ {
	}
	err = p.Shutdown(ctx)
	return p.Stats(), time.Since(start), err
}

// articleLoop is the article's consumer loop feeding its workers through a
// buffered channel: a full buffer means a warning and a 10 ms sleep.
func articleLoop(ctx context.Context, o options, done, warnings *atomic.Int64) (time.Duration, error) {
	jobs := make(chan int64, o.buffer)
	var wg sync.WaitGroup
	for range o.workers {
		wg.Go(func() {
			for range jobs {
				time.Sleep(time.Millisecond)
				done.Add(1)
			}
		})
	}
	start := time.Now()
	deadline := start.Add(backpressureWindow)
	var offset int64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case jobs <- offset:
			offset++
		default:
			warnings.Add(1) // the article logs "WARN: backpressure applied at offset N"
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(jobs)
	wg.Wait()
	return time.Since(start), ctx.Err()
}
