package patterns

import (
	"cmp"
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

// WriteBehindOptions sets the loss window and where failures are reported.
type WriteBehindOptions struct {
	// FlushInterval is how often the buffer is written to the database. Default 100 ms.
	FlushInterval time.Duration
	// MaxPending bounds the writes not yet committed (buffered or being flushed).
	// A Put that would exceed it triggers a flush and waits for room. Default 1000.
	MaxPending int
	// FlushTimeout bounds one flush. Default 5 s.
	FlushTimeout time.Duration
	// OnFlushError sees each failed flush of the background flusher (the database
	// is down or slow; the rows are kept and retried).
	OnFlushError func(error)
	// OnReject sees each write the database refused (its error wraps ErrRejected);
	// the write is dropped. Rejections are counted in Stats either way.
	OnReject func(*RejectedError)
}

const stripes = 64

// WriteBehind acknowledges a write once it is in an in-process buffer (and in the
// cache, for other processes); a background goroutine writes the buffer to the
// database in batches. Writes to one key between two flushes coalesce into one row
// write. The article files it under "very low write latency, HIGH data-loss risk":
// analytics, view counters.
//
// Guarantees (each one is a test of the chapter's suite, on PostgreSQL too):
//
//   - Read-your-writes in this process: Get returns the newest write of a key until
//     it is committed (from the buffer, also while its batch is being written), and
//     after (from the cache or the database). A read never caches a database row
//     for a key with a write buffered or in flight, nor one older than a write that
//     came in while it read. Other processes read what the cache holds: the newest
//     write, or, if its cache write failed, the database's row (or the older value,
//     if Redis refused the delete too) until the flush that commits the write
//     deletes the key, retrying at every flush while Redis fails.
//   - Loss window: a crash loses the writes not yet committed: at most MaxPending
//     keys, written less than FlushInterval + one flush duration ago while the
//     database keeps up. While the database is down the count bound still holds
//     (Put blocks once MaxPending writes are waiting) but their age grows with the
//     outage. The cache going down loses nothing: the buffer is in this process.
//   - A row the database rejects (a constraint; what Validate cannot know) is
//     dropped alone: the flusher splits the batch until the row stands alone,
//     commits the others, reports it (OnReject, Stats, and the error of Flush and
//     Close), and removes it from the cache; reads return the last committed row.
//     Invalid products (ErrInvalid) are refused by Put before they are buffered.
//   - Close flushes everything before returning: a clean shutdown loses nothing. If
//     its ctx ends first it gives up at once, cutting short a batch in flight, and
//     says how many writes are lost.
//
// A batch whose outcome is unknown (the database committed, then the connection
// dropped) is retried: writes are idempotent upserts, so the cost is a version
// number bumped twice. Do not mix WriteBehind with other writers of the same keys:
// its cache writes overwrite, since versions are assigned only when the buffer
// reaches the database.
type WriteBehind struct {
	c  cache
	db Store
	o  WriteBehindOptions

	// flushing is a one-slot semaphore: one flush at a time, so an older batch never
	// commits after a newer one. A channel, so that waiting for it honours ctx.
	flushing chan struct{}

	// keyLocks serialise, per stripe of keys, a Put's buffer update and cache write
	// against a read's fill and the flusher's cache clean-ups, so none of them can
	// leave an older value cached. Channels, so a waiting caller honours its ctx.
	keyLocks [stripes]chan struct{}

	mu       sync.Mutex
	pending  map[string]Product  // buffered, not yet taken by a flush
	inflight map[string]Product  // in the batch being written
	dirty    map[string]struct{} // the cache may hold something older than the write: its SET failed
	gen      [stripes]uint64     // Puts per stripe: a fill checks that none came in while it read
	room     chan struct{}       // closed (and replaced) whenever pending+inflight shrinks
	closed   bool

	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context // canceled by Crash, or by Close giving up: cuts every flush short
	cancel context.CancelFunc

	flushed, batches, flushErrs, rejected, cacheErrs atomic.Int64
}

// WriteBehindStats counts a WriteBehind's work.
type WriteBehindStats struct {
	Pending     int   // writes buffered or in flight now
	Flushed     int64 // rows committed
	Batches     int64 // statements that committed rows
	FlushErrors int64 // failed flushes (the database was down or slow; retried)
	Rejected    int64 // writes the database refused (dropped)
	CacheErrors int64 // Puts whose cache write failed (the write is still buffered)
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
		flushing: make(chan struct{}, 1),
		pending:  make(map[string]Product),
		inflight: make(map[string]Product),
		dirty:    make(map[string]struct{}),
		room:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx, cancel: cancel,
	}
	for i := range w.keyLocks {
		w.keyLocks[i] = make(chan struct{}, 1)
	}
	go w.run()
	return w
}

func stripe(id string) int { return int(xxhash.Sum64String(id) % stripes) }

func (w *WriteBehind) lock(ctx context.Context, s int) error {
	select {
	case w.keyLocks[s] <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *WriteBehind) unlock(s int) { <-w.keyLocks[s] }

func (w *WriteBehind) run() {
	defer close(w.done)
	t := time.NewTicker(w.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-w.ctx.Done():
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
		if _, err := w.flush(w.ctx); err != nil && w.o.OnFlushError != nil && w.ctx.Err() == nil {
			w.o.OnFlushError(err)
		}
	}
}

// used is the number of writes not yet committed. Call with mu held.
func (w *WriteBehind) used() int { return len(w.pending) + len(w.inflight) }

func (w *WriteBehind) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.used() >= w.o.MaxPending
}

func (w *WriteBehind) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Put buffers p for the database and writes it to the cache. It returns once p is
// buffered; it blocks (until ctx ends) only while MaxPending writes are already
// waiting. A failed cache write does not fail the Put: the write is buffered and
// will be committed; other processes read the database's row until then, and the
// key is deleted from the cache after the commit (CacheErrors counts them).
func (w *WriteBehind) Put(ctx context.Context, p Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	s := stripe(p.ID)
	for {
		if err := w.lock(ctx, s); err != nil {
			return err
		}
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			w.unlock(s)
			return ErrClosed
		}
		if _, ok := w.pending[p.ID]; ok || w.used() < w.o.MaxPending {
			break
		}
		room := w.room
		w.mu.Unlock()
		w.unlock(s) // do not hold up other keys of the stripe while waiting for room
		w.signal()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer w.unlock(s)
	w.pending[p.ID] = p
	w.gen[s]++
	full := w.used() >= w.o.MaxPending
	w.mu.Unlock()
	if full {
		w.signal()
	}

	err := w.c.overwrite(ctx, p)
	if err != nil {
		w.cacheErrs.Add(1)
		_ = w.c.del(ctx, p.ID) // best effort: others then read the database, not an older cached value
	}
	w.mu.Lock()
	if err != nil {
		w.dirty[p.ID] = struct{}{}
	} else {
		delete(w.dirty, p.ID)
	}
	w.mu.Unlock()
	return nil
}

// Get reads the buffer (read-your-writes in this process), then the cache, then the
// database.
func (w *WriteBehind) Get(ctx context.Context, id string) (Product, error) {
	if err := ValidateID(id); err != nil {
		return Product{}, err
	}
	s := stripe(id)
	w.mu.Lock()
	p, buffered := w.pending[id]
	if !buffered {
		p, buffered = w.inflight[id]
	}
	_, dirty := w.dirty[id]
	gen := w.gen[s]
	w.mu.Unlock()
	if buffered {
		return p, nil
	}
	if !dirty { // a dirty key's cache entry may be older than the database
		if p, err := w.c.get(ctx, id); err == nil || errors.Is(err, ErrNotFound) {
			return p, err
		}
	}
	p, err := w.db.Get(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Product{}, err
	}
	w.fill(ctx, s, gen, p, id, err)
	return p, err
}

// fill caches what a read loaded (p, or "not found" when loadErr says so), unless a
// Put of the key's stripe came in since the read looked at the buffer: that write
// may be newer than the row. The stripe lock orders the fill with Puts: a Put either
// counted in gen before the check, or writes the cache after the fill. Best effort,
// like every fill.
func (w *WriteBehind) fill(ctx context.Context, s int, gen uint64, p Product, id string, loadErr error) {
	if w.lock(ctx, s) != nil {
		return
	}
	defer w.unlock(s)
	w.mu.Lock()
	_, dirty := w.dirty[id]
	stale := dirty || w.gen[s] != gen
	w.mu.Unlock()
	switch {
	case stale:
	case loadErr != nil:
		_ = w.c.putMissing(ctx, id)
	default:
		_ = w.c.putAbsent(ctx, p)
	}
}

// Flush writes the buffer now. It returns an error if the database failed (the
// writes stay buffered) or rejected rows (as *RejectedError, dropped); ErrClosed
// after Crash, or after Close has finished.
func (w *WriteBehind) Flush(ctx context.Context) error {
	rejected, err := w.flush(ctx)
	return errors.Join(append(rejected, err)...)
}

// flush takes the buffer and writes it. A rejection is not a failure of the flush:
// the rows are reported, the rest committed; err is for the database being down.
func (w *WriteBehind) flush(ctx context.Context) (rejected []error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case w.flushing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.flushing }()
	if w.ctx.Err() != nil { // halted: crashed, or closed
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, w.o.FlushTimeout)
	defer cancel()
	defer context.AfterFunc(w.ctx, cancel)() // Crash cuts every flush short, a caller's too

	w.mu.Lock()
	w.inflight, w.pending = w.pending, w.inflight // inflight was empty: no flush runs
	batch := slices.SortedFunc(maps.Values(w.inflight), func(a, b Product) int { return cmp.Compare(a.ID, b.ID) })
	w.mu.Unlock()

	var r flushResult
	if len(batch) > 0 {
		err = w.write(ctx, batch, &r)
		if err != nil {
			w.flushErrs.Add(1)
			err = fmt.Errorf("patterns: write-behind flush: %w", err)
		}
	}
	for _, rj := range r.rejected {
		w.uncache(ctx, rj.Product.ID)
	}

	w.mu.Lock()
	settled := len(r.committed) + len(r.rejected)
	for id, p := range w.inflight {
		if _, newer := w.pending[id]; !newer && !r.done(id) { // a Put since the batch was taken wins
			w.pending[id] = p
		}
	}
	clear(w.inflight)
	if settled > 0 {
		close(w.room)
		w.room = make(chan struct{})
	}
	w.mu.Unlock()

	w.flushed.Add(int64(len(r.committed)))
	w.batches.Add(r.statements)
	w.rejected.Add(int64(len(r.rejected)))
	for _, rj := range r.rejected {
		if w.o.OnReject != nil {
			w.o.OnReject(rj)
		}
		rejected = append(rejected, rj)
	}
	w.cleanDirty(ctx)
	return rejected, err
}

type flushResult struct {
	committed  map[string]struct{}
	rejected   []*RejectedError
	statements int64
}

func (r *flushResult) done(id string) bool {
	if _, ok := r.committed[id]; ok {
		return true
	}
	return slices.ContainsFunc(r.rejected, func(e *RejectedError) bool { return e.Product.ID == id })
}

// write commits rows, isolating the ones the database rejects: a batch refused for
// what a row holds is split in halves until the rejected rows stand alone (k bad
// rows among n cost at most 2k·log2(n) more statements). It stops at the first other
// error (the database is down or slow), leaving the rest for a retry.
func (w *WriteBehind) write(ctx context.Context, rows []Product, r *flushResult) error {
	err := w.db.PutBatch(ctx, rows)
	switch {
	case err == nil:
		if r.committed == nil {
			r.committed = make(map[string]struct{}, len(rows))
		}
		for _, p := range rows {
			r.committed[p.ID] = struct{}{}
		}
		r.statements++
		return nil
	case !errors.Is(err, ErrRejected):
		return err
	case len(rows) == 1:
		r.rejected = append(r.rejected, &RejectedError{Product: rows[0], Err: err})
		return nil
	}
	half := len(rows) / 2
	if err := w.write(ctx, rows[:half], r); err != nil {
		return err
	}
	return w.write(ctx, rows[half:], r)
}

// uncache deletes a rejected write from the cache (its Put cached it), unless a newer
// write of the key is buffered: that one's cache entry stays. If the delete fails the
// key is marked dirty, so reads here skip the cache until a clean-up succeeds.
func (w *WriteBehind) uncache(ctx context.Context, id string) {
	s := stripe(id)
	if w.lock(ctx, s) != nil {
		w.markDirty(id)
		return
	}
	defer w.unlock(s)
	w.mu.Lock()
	_, newer := w.pending[id]
	w.mu.Unlock()
	if !newer && w.c.del(ctx, id) != nil {
		w.markDirty(id)
	}
}

func (w *WriteBehind) markDirty(id string) {
	w.mu.Lock()
	w.dirty[id] = struct{}{}
	w.mu.Unlock()
}

// cleanDirty deletes from the cache the committed keys whose Put could not write it
// (it may hold an older value), so that no reader, here or elsewhere, is served
// that value after the commit. It stops at the first failure: Redis is still down.
func (w *WriteBehind) cleanDirty(ctx context.Context) {
	w.mu.Lock()
	var ids []string
	for id := range w.dirty {
		if _, p := w.pending[id]; !p {
			ids = append(ids, id)
		}
	}
	w.mu.Unlock()
	for _, id := range ids {
		s := stripe(id)
		if w.lock(ctx, s) != nil {
			return
		}
		w.mu.Lock()
		_, still := w.dirty[id]
		_, newer := w.pending[id]
		w.mu.Unlock()
		if still && !newer {
			if w.c.del(ctx, id) != nil {
				w.unlock(s)
				return
			}
			w.mu.Lock()
			delete(w.dirty, id)
			w.mu.Unlock()
		}
		w.unlock(s)
	}
}

// Close stops accepting writes and flushes everything buffered: a clean shutdown
// loses nothing. If the database cannot take the rest before ctx ends, Close cuts
// the batch in flight short and the error says how many writes are lost (a batch cut
// short may have committed: the count is an upper bound). Rows the database rejected
// during Close are in the error as *RejectedError.
func (w *WriteBehind) Close(ctx context.Context) error {
	if !w.shut() {
		return nil
	}
	var errs []error
	for {
		rejected, err := w.flush(ctx)
		errs = append(errs, rejected...)
		if w.Stats().Pending == 0 {
			w.cancel()
			<-w.done
			return errors.Join(errs...)
		}
		if ctx.Err() == nil && err != nil {
			// The database is failing: retry at the flush pace, but no later than ctx allows.
			t := time.NewTimer(w.o.FlushInterval)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			lost := w.halt(false)
			return errors.Join(append(errs, fmt.Errorf("patterns: write-behind closed with %d writes lost: %w", lost, errors.Join(err, ctx.Err())))...)
		}
	}
}

// Crash simulates the process dying: the flusher stops, a flush in progress (the
// background one or a caller's Flush) is cut short, and the buffer is dropped. It
// returns how many writes were lost, the ones the loss window bounds (a batch cut
// short may have committed: the count is an upper bound).
func (w *WriteBehind) Crash() (lost int) {
	w.cancel()
	if !w.shut() {
		return 0
	}
	return w.halt(true)
}

// halt cuts every flush short, waits until none runs, and returns how many writes
// were not committed, dropping them if drop is set. No flush starts after it.
func (w *WriteBehind) halt(drop bool) int {
	w.cancel()
	<-w.done
	w.flushing <- struct{}{} // every flush watches w.ctx: this wait is as short as the Store's reaction to a cancel
	defer func() { <-w.flushing }()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.used()
	if drop {
		clear(w.pending)
	}
	return n
}

// shut marks the WriteBehind closed, wakes blocked Puts and tells the flusher to
// stop after the batch it is writing. It reports false if it was already shut.
func (w *WriteBehind) shut() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.closed = true
	close(w.room)
	w.room = make(chan struct{})
	close(w.stop)
	return true
}

// Stats returns the counters.
func (w *WriteBehind) Stats() WriteBehindStats {
	w.mu.Lock()
	n := w.used()
	w.mu.Unlock()
	return WriteBehindStats{
		Pending: n, Flushed: w.flushed.Load(), Batches: w.batches.Load(), FlushErrors: w.flushErrs.Load(),
		Rejected: w.rejected.Load(), CacheErrors: w.cacheErrs.Load(),
	}
}
