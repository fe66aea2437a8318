package patterns

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// ErrClosed is returned by WriteBehind.Put after Close or Crash.
var ErrClosed = errors.New("patterns: write-behind closed")

// WriteBehindOptions sets the loss window.
type WriteBehindOptions struct {
	// FlushInterval is how often the buffer is written to the database. Default 100 ms.
	FlushInterval time.Duration
	// MaxPending bounds the writes not yet committed (buffered or being flushed).
	// A Put that would exceed it triggers a flush and waits for room. Default 1000.
	MaxPending int
	// FlushTimeout bounds one batch write. Default 5 s.
	FlushTimeout time.Duration
	// OnFlushError sees each failed batch write (the batch is kept and retried).
	OnFlushError func(error)
}

// WriteBehind acknowledges a write once it is in the cache and in an in-process
// buffer; a background goroutine writes the buffer to the database in batches. Writes
// to one key between two flushes coalesce into one row write. The article files it
// under "very low write latency, HIGH data-loss risk": analytics, view counters.
//
// Loss window: a crash loses the buffer, which holds at most MaxPending keys,
// written less than FlushInterval + one flush duration ago while the database keeps
// up. While the database is down the count bound still holds (Put blocks once
// MaxPending keys are waiting) but their age grows with the outage. Close flushes
// everything before returning, so a clean shutdown loses nothing.
//
// Do not mix WriteBehind with other writers of the same keys: its cache writes
// overwrite, since versions are assigned only when the buffer reaches the database.
type WriteBehind struct {
	c  cache
	db Store
	o  WriteBehindOptions

	flushMu sync.Mutex // one flush at a time: an older batch must never commit after a newer one

	// keyLocks serialise Puts of one key (by hash stripe) from the buffer update to the
	// cache write, so two Puts' SETs cannot reach Redis in the opposite order of their
	// buffer updates and leave the older value cached. Channels, so a waiting Put
	// still honours its ctx.
	keyLocks [64]chan struct{}

	mu       sync.Mutex
	pending  map[string]Product
	inflight int           // keys in the batch being written
	room     chan struct{} // closed (and replaced) whenever pending+inflight shrinks
	closed   bool

	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context // canceled by Crash: a crash does not wait for the batch in flight
	cancel context.CancelFunc

	flushed, batches, flushErrs atomic.Int64
}

// WriteBehindStats counts a WriteBehind's work.
type WriteBehindStats struct {
	Pending     int   // keys buffered or in flight now
	Flushed     int64 // rows committed
	Batches     int64 // successful batch writes
	FlushErrors int64 // failed batch writes (retried)
}

// NewWriteBehind starts the flushing goroutine; Close (or Crash) stops it.
func NewWriteBehind(cfg Config, db Store, o WriteBehindOptions) *WriteBehind {
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1000
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &WriteBehind{
		c: newCache(cfg), db: db, o: o,
		pending: make(map[string]Product),
		room:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx, cancel: cancel,
	}
	for i := range w.keyLocks {
		w.keyLocks[i] = make(chan struct{}, 1)
	}
	// A read's fill must not replace a buffered write's cache entry: those carry
	// version 0 until flushed, so the version compare-and-set would let an older row
	// from the database through.
	w.c.fillIfAbsent = true
	go w.run()
	return w
}

func (w *WriteBehind) keyLock(id string) chan struct{} {
	return w.keyLocks[xxhash.Sum64String(id)%uint64(len(w.keyLocks))]
}

func (w *WriteBehind) run() {
	defer close(w.done)
	t := time.NewTicker(w.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.kick:
			// A kick means "the buffer is full". Puts that found it full during the
			// flush that just ended leave stale kicks behind; acting on them would
			// flush small batches early.
			if !w.full() {
				continue
			}
		}
		if err := w.flushOnce(w.ctx); err != nil && w.o.OnFlushError != nil {
			w.o.OnFlushError(err)
		}
	}
}

func (w *WriteBehind) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)+w.inflight >= w.o.MaxPending
}

func (w *WriteBehind) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Put buffers p for the database and writes it to the cache. It returns once p is
// buffered; it blocks (until ctx ends) only while MaxPending keys are already
// waiting. A cache error is returned, but p is buffered and will still be written.
func (w *WriteBehind) Put(ctx context.Context, p Product) error {
	lock := w.keyLock(p.ID)
	for {
		select {
		case lock <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			<-lock
			return ErrClosed
		}
		if _, ok := w.pending[p.ID]; ok || len(w.pending)+w.inflight < w.o.MaxPending {
			break
		}
		room := w.room
		w.mu.Unlock()
		<-lock // do not hold up other keys of the stripe while waiting for room
		w.signal()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-lock }()
	w.pending[p.ID] = p
	full := len(w.pending)+w.inflight >= w.o.MaxPending
	w.mu.Unlock()
	if full {
		w.signal()
	}
	return w.c.overwrite(ctx, p)
}

// Get reads the buffer (read-your-writes in this process), then the cache, then the
// database.
func (w *WriteBehind) Get(ctx context.Context, id string) (Product, error) {
	w.mu.Lock()
	p, ok := w.pending[id]
	w.mu.Unlock()
	if ok {
		return p, nil
	}
	return w.c.lookup(ctx, id, w.db.Get)
}

// Flush writes the buffer now.
func (w *WriteBehind) Flush(ctx context.Context) error { return w.flushOnce(ctx) }

func (w *WriteBehind) flushOnce(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()

	w.mu.Lock()
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return nil
	}
	batch := w.pending
	w.pending = make(map[string]Product, len(batch))
	w.inflight = len(batch)
	w.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, w.o.FlushTimeout)
	defer cancel()
	err := w.db.PutBatch(ctx, slices.Collect(maps.Values(batch)))

	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight = 0
	if err != nil {
		w.flushErrs.Add(1)
		for id, p := range batch {
			if _, newer := w.pending[id]; !newer { // a Put since the batch was taken wins
				w.pending[id] = p
			}
		}
		return fmt.Errorf("patterns: write-behind flush of %d rows: %w", len(batch), err)
	}
	w.flushed.Add(int64(len(batch)))
	w.batches.Add(1)
	close(w.room)
	w.room = make(chan struct{})
	return nil
}

// Close stops accepting writes and flushes everything buffered: a clean shutdown
// loses nothing. If the database cannot take the rest before ctx ends, the error says
// how many writes are lost.
func (w *WriteBehind) Close(ctx context.Context) error {
	if !w.shut() {
		return nil
	}
	defer w.cancel()
	for {
		err := w.flushOnce(ctx)
		n := w.Stats().Pending
		if n == 0 {
			return nil
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return fmt.Errorf("patterns: write-behind closed with %d writes lost: %w", n, err)
		}
		// The database is failing: retry at the flush pace, but no later than ctx allows.
		t := time.NewTimer(w.o.FlushInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("patterns: write-behind closed with %d writes lost: %w", n, errors.Join(err, ctx.Err()))
		}
	}
}

// Crash simulates the process dying: the flusher stops, a batch in flight is
// abandoned, and the buffer is dropped without flushing. It returns how many keys
// were lost; they are the ones the loss window promises to bound.
func (w *WriteBehind) Crash() (lost int) {
	w.cancel()
	if !w.shut() {
		return 0
	}
	w.flushMu.Lock() // wait for a Flush call in progress to give up
	defer w.flushMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	lost = len(w.pending)
	clear(w.pending)
	return lost
}

// shut marks the WriteBehind closed, wakes blocked Puts and stops the flusher. It
// reports false if it was already shut.
func (w *WriteBehind) shut() bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.closed = true
	close(w.room)
	w.room = make(chan struct{})
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	return true
}

// Stats returns the counters.
func (w *WriteBehind) Stats() WriteBehindStats {
	w.mu.Lock()
	n := len(w.pending) + w.inflight
	w.mu.Unlock()
	return WriteBehindStats{Pending: n, Flushed: w.flushed.Load(), Batches: w.batches.Load(), FlushErrors: w.flushErrs.Load()}
}
