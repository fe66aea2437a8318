package pool

// The article's pools, modelled here in the project's own words so that the
// errata in the chapter README can be reproduced; each TestArticle… asserts
// the wrong outcome, next to the test of Pool or Ordered that gets it right.

import (
	"context"
	"errors"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type articleMessage struct {
	Key       string
	Partition int32
	Offset    int64
}

// articleStartWorkerPool is the article's StartWorkerPool: workers return on
// ctx.Done whatever is still buffered, a failed process call is only logged
// (here: counted in logged), and the WaitGroup is waited for in a goroutine
// that tells nobody.
func articleStartWorkerPool(ctx context.Context, workers, buffer int, logged *atomic.Int64,
	process func(context.Context, articleMessage) error) chan<- articleMessage {
	jobs := make(chan articleMessage, buffer)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m, ok := <-jobs:
					if !ok {
						return
					}
					if err := process(ctx, m); err != nil {
						logged.Add(1) // log.Printf, then on to the next message
					}
				}
			}
		})
	}
	go func() { wg.Wait() }()
	return jobs
}

// articleConsumerLoop is the article's KafkaConsumerLoop: a non-blocking
// send, and on a full buffer a warning and a 10 ms sleep before the next try.
func articleConsumerLoop(ctx context.Context, jobs chan<- articleMessage, warnings *atomic.Int64) {
	var offset int64
	for {
		select {
		case <-ctx.Done():
			return
		default:
			for range 10 {
				select {
				case jobs <- articleMessage{Offset: offset}:
					offset++
				case <-ctx.Done():
					return
				default:
					warnings.Add(1) // "WARN: backpressure applied at offset N"
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
	}
}

// The article's pool ends with its context and leaves the buffer behind:
// of 50 accepted messages, the ones still buffered when the context ended
// are never looked at (a worker that sees both ctx.Done and a message picks
// either at random, so the count varies; it is about 10), and the caller had
// no way to wait for the workers. Its errors went to the log only.
// Pool.Shutdown drains all 50 (TestShutdownDrains) and returns the error
// (TestErrorsAreReported).
func TestArticlePoolDropsTheBufferOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var processed, logged atomic.Int64
		jobs := articleStartWorkerPool(ctx, 2, 100, &logged, func(context.Context, articleMessage) error {
			time.Sleep(50 * time.Millisecond)
			if processed.Add(1)%5 == 0 {
				return errors.New("db write failed")
			}
			return nil
		})
		for i := range 50 {
			jobs <- articleMessage{Offset: int64(i)}
		}
		time.Sleep(249 * time.Millisecond) // 2 workers, 4 messages done each, the 5th in hand
		cancel()                           // shutdown: SIGTERM, a deploy
		time.Sleep(time.Hour)              // long enough for any worker to finish
		left := int64(len(jobs))
		t.Logf("processed %d of 50, %d left in the buffer, %d errors logged", processed.Load(), left, logged.Load())
		assert.Equal(t, int64(50), processed.Load()+left, "every message was either processed or left behind")
		assert.GreaterOrEqual(t, processed.Load(), int64(10))
		assert.Greater(t, left, int64(0), "accepted, never processed")
		assert.Equal(t, processed.Load()/5, logged.Load(), "errors: a log line each, nothing the caller can act on")
	})
}

// The article's consumer loop does not block on a full buffer; it sleeps
// 10 ms. When the buffer holds less than 10 ms of the workers' work the
// workers starve: 4 workers at 1 ms a message with a buffer of 10 processed
// about a third of what the same workers do behind a blocking Submit, and the
// loop logged a warning every 10 ms.
func TestArticleSleepPollStarvesTheWorkers(t *testing.T) {
	const window = time.Second
	work := func(context.Context, articleMessage) error { time.Sleep(time.Millisecond); return nil }
	var articleDone, warnings, logged atomic.Int64
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), window)
		defer cancel()
		jobs := articleStartWorkerPool(ctx, 4, 10, &logged, func(ctx context.Context, m articleMessage) error {
			_ = work(ctx, m)
			articleDone.Add(1)
			return nil
		})
		articleConsumerLoop(ctx, jobs, &warnings)
		synctest.Wait()
	})
	var oursDone atomic.Int64
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), window)
		defer cancel()
		p := newPool(t, Config[articleMessage]{Workers: 4, Buffer: 10}, func(ctx context.Context, m articleMessage) error {
			_ = work(ctx, m)
			oursDone.Add(1)
			return nil
		})
		for i := int64(0); p.Submit(ctx, articleMessage{Offset: i}) == nil; i++ {
		}
		_ = p.Shutdown(ctx)
	})
	t.Logf("in %v of fake time: article's loop %d messages (%d warnings), blocking Submit %d", window, articleDone.Load(), warnings.Load(), oursDone.Load())
	assert.InDelta(t, 4000, oursDone.Load(), 20, "4 workers × 1000 messages/s")
	assert.Less(t, articleDone.Load()*2, oursDone.Load(), "the sleep-poll loop left the workers idle over half the time")
	assert.Greater(t, warnings.Load(), int64(90), "a warning per 10 ms")
}

// articleOrdered is the article's OrderedPartitionWorkerPool.
type articleOrdered struct {
	mu             sync.RWMutex
	partitionChans map[int32]chan articleMessage
}

func (p *articleOrdered) Submit(ctx context.Context, m articleMessage, process func(context.Context, articleMessage) error) {
	p.mu.Lock()
	ch, ok := p.partitionChans[m.Partition]
	if !ok {
		ch = make(chan articleMessage, 100)
		p.partitionChans[m.Partition] = ch
		go func() {
			for m := range ch {
				_ = process(ctx, m) // the article ignores the error
			}
		}()
	}
	p.mu.Unlock()
	ch <- m
}

// The article never makes partitionChans: the first Submit on a pool built
// as declared panics. NewOrdered has no zero value to misuse.
func TestArticleOrderedPoolPanicsOnFirstSubmit(t *testing.T) {
	var p articleOrdered
	assert.PanicsWithError(t, "assignment to entry in nil map", func() {
		p.Submit(t.Context(), articleMessage{Partition: 3}, func(context.Context, articleMessage) error { return nil })
	})
}

// With the map made, a partition's goroutine keeps the ctx and process of
// the first Submit for that partition: later Submits' arguments are ignored,
// a cancelled first ctx cancels every later message, and errors vanish.
// Used per key (order ID) instead of per partition, it starts a goroutine
// per key that never ends.
func TestArticleOrderedPoolKeepsTheFirstCallsArguments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := articleOrdered{partitionChans: map[int32]chan articleMessage{}}
		first, cancelFirst := context.WithCancel(t.Context())
		var firstCalls, secondCalls, cancelledCalls atomic.Int64
		p.Submit(first, articleMessage{Partition: 1, Offset: 0}, func(ctx context.Context, _ articleMessage) error {
			firstCalls.Add(1)
			if ctx.Err() != nil {
				cancelledCalls.Add(1)
			}
			return errors.New("lost")
		})
		synctest.Wait()
		cancelFirst() // the first caller's request ended
		for i := range 5 {
			p.Submit(t.Context(), articleMessage{Partition: 1, Offset: int64(i + 1)}, func(context.Context, articleMessage) error {
				secondCalls.Add(1)
				return nil
			})
		}
		synctest.Wait()
		assert.Equal(t, int64(6), firstCalls.Load(), "the first process ran every message")
		assert.Zero(t, secondCalls.Load(), "later Submits' process never ran")
		assert.Equal(t, int64(5), cancelledCalls.Load(), "on the first caller's cancelled context")

		for k := range int32(1000) {
			p.Submit(t.Context(), articleMessage{Partition: 100 + k}, func(context.Context, articleMessage) error { return nil })
		}
		synctest.Wait()
		assert.Equal(t, 1001, partitionGoroutines(t), "a goroutine per key (and partition 1's), none ever ends")
		for _, ch := range p.partitionChans { // the article has no way to stop them; the test does
			close(ch)
		}
	})
}

// partitionGoroutines counts the goroutines running an articleOrdered
// partition loop (a count of all goroutines would include other tests'
// teardown).
func partitionGoroutines(t *testing.T) int {
	t.Helper()
	var b strings.Builder
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&b, 2))
	return strings.Count(b.String(), "(*articleOrdered).Submit.func1(")
}

// Ordered's lanes take each Submit's item and report errors.
func TestOrderedReportsErrorsPerItem(t *testing.T) {
	var failed atomic.Int64
	o, err := NewOrdered[int32](t.Context(), 2, 4, func(articleMessage, error) { failed.Add(1) },
		func(_ context.Context, m articleMessage) error {
			if m.Offset%2 == 1 {
				return errors.New("odd")
			}
			return nil
		})
	require.NoError(t, err)
	for i := range 10 {
		require.NoError(t, o.Submit(t.Context(), int32(i%3), articleMessage{Partition: int32(i % 3), Offset: int64(i)}))
	}
	require.NoError(t, o.Shutdown(t.Context()))
	assert.Equal(t, int64(5), failed.Load())
	assert.Equal(t, int64(5), o.Stats().Processed)
}
