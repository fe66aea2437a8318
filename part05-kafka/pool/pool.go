// Package pool is the article's bounded worker pool and its partition-aware
// ordered pool, with what they leave out:
//
//   - Submit blocks while the buffer is full: that wait is the backpressure,
//     and it is measured (Stats.Blocked, Stats.BlockedSubmits) instead of
//     being polled for with a 10 ms sleep and a log line per poll.
//   - Errors from process are reported (Config.OnError, Stats.Failed, and
//     Shutdown's error) instead of logged and dropped.
//   - Shutdown drains: it stops new submits, lets the workers finish every
//     buffered item, and returns when they have, or when its context ends,
//     reporting how many items were abandoned. The article's workers return on
//     ctx.Done with items still in the buffer, and its wg.Wait runs in a
//     goroutine nobody can wait for.
//   - Ordered keeps per-key order with a fixed number of lanes chosen by a
//     hash of the key, so memory is lanes × buffer whatever the number of keys
//     or partitions, every lane ends at Shutdown, and its zero value is never
//     used (the article's map is nil, so its first Submit panics).
//
// A Pool is safe for concurrent use; any number of goroutines may Submit.
package pool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Submit after Shutdown has begun.
var ErrClosed = errors.New("pool: closed")

// Config sizes a Pool.
type Config[T any] struct {
	Workers int // goroutines running process; at least 1
	Buffer  int // items waiting for a worker before Submit blocks; 0 hands each item straight to a worker

	// OnError, if set, is called by the worker whose process call failed.
	// Without it the first error is kept and returned by Shutdown.
	OnError func(item T, err error)
}

// Stats is a snapshot of a pool's counters.
type Stats struct {
	Submitted      int64         // items accepted
	Processed      int64         // process calls that returned nil
	Failed         int64         // process calls that returned an error
	Abandoned      int64         // accepted items never processed: the drain ran out of time
	Depth          int           // items in the buffer now
	MaxDepth       int           // the most items seen in the buffer by a Submit
	BlockedSubmits int64         // Submit calls that found the buffer full and waited
	Blocked        time.Duration // time Submit callers spent waiting for room
}

// Pool runs process on submitted items with a fixed number of workers.
type Pool[T any] struct {
	jobs    chan T
	process func(ctx context.Context, item T) error
	onError func(item T, err error)

	ctx    context.Context // handed to process; cancelled when a drain runs out of time
	cancel context.CancelFunc

	mu       sync.RWMutex // Submit holds it shared while it sends; Shutdown takes it to close jobs
	closed   bool
	quit     chan struct{} // closed when Shutdown begins: blocked Submits give up
	quitOnce sync.Once
	done     chan struct{} // closed when every worker has returned

	submitted, processed, failed, abandoned, blockedN, blockedNs atomic.Int64
	maxDepth                                                     atomic.Int64
	firstErr                                                     atomic.Pointer[error]
}

// New starts cfg.Workers goroutines that call process for each submitted
// item. ctx is the parent of the context process gets; cancelling it cancels
// in-flight work but does not stop the pool (Shutdown does).
func New[T any](ctx context.Context, cfg Config[T], process func(ctx context.Context, item T) error) (*Pool[T], error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("pool: Workers = %d, want at least 1", cfg.Workers)
	}
	if cfg.Buffer < 0 {
		return nil, fmt.Errorf("pool: Buffer = %d, want 0 or more", cfg.Buffer)
	}
	if process == nil {
		return nil, errors.New("pool: process is nil")
	}
	p := &Pool[T]{jobs: make(chan T, cfg.Buffer), process: process, onError: cfg.OnError,
		quit: make(chan struct{}), done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(p.work)
	}
	go func() { wg.Wait(); close(p.done) }()
	return p, nil
}

func (p *Pool[T]) work() {
	for item := range p.jobs {
		if p.ctx.Err() != nil { // a drain that ran out of time, or New's ctx ended
			p.abandoned.Add(1)
			continue
		}
		if err := p.process(p.ctx, item); err != nil {
			p.failed.Add(1)
			if p.onError != nil {
				p.onError(item, err)
			} else {
				p.firstErr.CompareAndSwap(nil, &err)
			}
			continue
		}
		p.processed.Add(1)
	}
}

// Submit hands item to the pool. While the buffer is full it blocks, which is
// the backpressure: the caller (a consumer's fetch loop) stops reading until a
// worker frees a slot. It returns ctx's error if ctx ends first, ErrClosed
// once Shutdown has begun, and an error wrapping the cause once New's
// context has ended; the item was not accepted in any of these cases.
func (p *Pool[T]) Submit(ctx context.Context, item T) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if err := context.Cause(p.ctx); err != nil { // New's ctx ended: items would be abandoned
		return fmt.Errorf("pool: stopped: %w", err)
	}
	select {
	case p.jobs <- item:
	default:
		start := time.Now()
		select {
		case p.jobs <- item:
		case <-ctx.Done():
			p.blocked(start)
			return ctx.Err()
		case <-p.quit:
			p.blocked(start)
			return ErrClosed
		}
		p.blocked(start)
	}
	p.submitted.Add(1)
	if d := int64(len(p.jobs)); d > p.maxDepth.Load() {
		p.maxDepth.Store(d) // a racy max: a gauge, not an invariant
	}
	return nil
}

func (p *Pool[T]) blocked(start time.Time) {
	p.blockedN.Add(1)
	p.blockedNs.Add(int64(time.Since(start)))
}

// TrySubmit hands item to the pool only if a slot is free now, for callers
// that would rather shed load (or pause a fetch loop and count it) than wait.
func (p *Pool[T]) TrySubmit(item T) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	select {
	case p.jobs <- item:
		p.submitted.Add(1)
		return true
	default:
		return false
	}
}

// Shutdown stops accepting items and waits until the workers have processed
// every item already accepted. If ctx ends first, the context handed to
// process is cancelled, Shutdown waits for the workers to return and reports
// how many accepted items were left unprocessed. Otherwise it returns the
// first processing error if there was no OnError, else nil. Calling it again
// waits again and returns the same kind of answer.
func (p *Pool[T]) Shutdown(ctx context.Context) error {
	p.stop()
	return p.wait(ctx)
}

// stop ends intake: blocked Submits give up, later ones get ErrClosed, and
// the workers return once the buffer is empty.
func (p *Pool[T]) stop() {
	p.quitOnce.Do(func() { close(p.quit) })
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.jobs)
	}
	p.mu.Unlock()
}

// wait is Shutdown after stop.
func (p *Pool[T]) wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
	}
	p.cancel()
	s := p.Stats()
	if s.Abandoned > 0 {
		return fmt.Errorf("pool: drain cut short (%w): %d accepted items not processed", cmp.Or(ctx.Err(), context.Cause(p.ctx)), s.Abandoned)
	}
	if e := p.firstErr.Load(); e != nil {
		return fmt.Errorf("pool: %d items failed; first: %w", s.Failed, *e)
	}
	return nil
}

// Stats returns the pool's counters now.
func (p *Pool[T]) Stats() Stats {
	return Stats{
		Submitted:      p.submitted.Load(),
		Processed:      p.processed.Load(),
		Failed:         p.failed.Load(),
		Abandoned:      p.abandoned.Load(),
		Depth:          len(p.jobs),
		MaxDepth:       int(p.maxDepth.Load()),
		BlockedSubmits: p.blockedN.Load(),
		Blocked:        time.Duration(p.blockedNs.Load()),
	}
}
