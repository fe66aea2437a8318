package patterns

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Write-behind's guarantees (see the WriteBehind doc), one or more cases each.

// openWB returns a WriteBehind with options o, closed at cleanup.
func (e *env) openWB(t *testing.T, o WriteBehindOptions) *WriteBehind {
	w := NewWriteBehind(e.cfg, e.db, o)
	closeAtCleanup(t, w)
	return w
}

var writeBehindCases = []suiteCase{
	// Read-your-writes in this process.
	{"reads come from the buffer, other processes read the cache", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		w, other := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour}), e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour})
		id := e.id("p")
		require.NoError(t, w.Put(ctx, Product{ID: id, Name: "fresh"}))
		for _, q := range []*WriteBehind{w, other} {
			got, err := q.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, "fresh", got.Name)
		}
		assert.Zero(t, e.db.Gets.Load(), "a buffered write was read from the database")
		assert.Zero(t, e.rows(t), "nothing is committed before a flush")
	}},
	{"writes to one key between two flushes coalesce into one row write", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour})
		for i := range 100 {
			require.NoError(t, w.Put(ctx, Product{ID: e.id("views"), Name: "counter", PriceCents: int64(i)}))
		}
		require.NoError(t, w.Flush(ctx))
		assert.EqualValues(t, 1, e.db.Batches.Load())
		assert.EqualValues(t, 1, e.db.BatchRows.Load())
		assert.EqualValues(t, 99, e.committed(t, e.id("views")).PriceCents)
	}},
	{"the flusher writes the buffer every FlushInterval", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		w := e.openWB(t, WriteBehindOptions{FlushInterval: 20 * time.Millisecond})
		for i := range 10 {
			require.NoError(t, w.Put(context.Background(), Product{ID: e.id(fmt.Sprint("p", i))}))
		}
		e.waitFor(t, "the ticker to flush", func() bool { return e.rows(t) == 10 })
	}},
	// Issue: the flush moved the batch out of the buffer, so a read during the
	// flush, with the cache entry gone, read the old row and cached it for the TTL.
	{"a write being flushed stays visible and no read caches the older row", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		id := e.id("p")
		require.NoError(t, e.store.PutBatch(ctx, []Product{{ID: id, Name: "old"}}))
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour})
		require.NoError(t, w.Put(ctx, Product{ID: id, Name: "new"}))
		require.NoError(t, e.rdb.Del(ctx, e.key(id)).Err()) // evicted
		h := newHold()
		e.fault.holdBatch.Store(h)
		flushed := make(chan error, 1)
		go func() { flushed <- w.Flush(ctx) }()
		within(t, "the flush to start", h.entered)
		e.reads(t, w, id, "new", "during the flush")
		assert.Zero(t, e.db.Gets.Load(), "the database was read for a key in flight")
		close(h.release)
		require.NoError(t, within(t, "the flush", flushed))
		e.reads(t, w, id, "new", "after the flush")
	}},
	// Issue: reads during an outage longer than the TTL returned the old row and
	// cached it, and kept returning it after recovery.
	{"during a database outage longer than the TTL reads return the write", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		id := e.id("p")
		require.NoError(t, e.store.PutBatch(ctx, []Product{{ID: id, Name: "old"}}))
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Millisecond})
		e.fault.down.Store(true)
		require.NoError(t, w.Put(ctx, Product{ID: id, Name: "new"}))
		e.expire(e.key(id))
		for i := range 50 {
			got, err := w.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, "new", got.Name, "read %d during the outage", i)
			time.Sleep(time.Millisecond) // let failing flushes run in between
		}
		assert.Positive(t, w.Stats().FlushErrors)
		e.fault.down.Store(false)
		require.NoError(t, w.Flush(ctx))
		e.reads(t, w, id, "new", "after recovery")
		assert.Equal(t, "new", e.committed(t, id).Name)
	}},
	// A read that loaded the row before a Put must not cache it after, whatever
	// happened to the Put's cache entry.
	{"a read that loaded the row before a write does not cache it", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		id := e.id("p")
		require.NoError(t, e.store.PutBatch(ctx, []Product{{ID: id, Name: "old"}}))
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour})
		finish := e.heldRead(t, w, id) // the reader has the old row
		require.NoError(t, w.Put(ctx, Product{ID: id, Name: "new"}))
		require.NoError(t, w.Flush(ctx))
		require.NoError(t, e.rdb.Del(ctx, e.key(id)).Err()) // evicted
		require.NoError(t, finish())
		_, ok := e.cached(t, id)
		assert.False(t, ok, "the reader cached the row it loaded before the write")
		e.reads(t, w, id, "new", "after the write")
	}},
	{"concurrent writes of one key leave the newest cached", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		id := e.id("views")
		inSet, release := make(chan struct{}), make(chan struct{})
		slow := func(cmd redis.Cmder) {
			if cmd.Name() == "set" && strings.Contains(cmd.String(), "first") {
				close(inSet)
				<-release // the first Put's SET is slow on the wire
			}
		}
		e.redis.before.Store(&slow)
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour})
		first, second := make(chan error, 1), make(chan error, 1)
		go func() { first <- w.Put(ctx, Product{ID: id, Name: "first"}) }()
		within(t, "the first SET", inSet)
		go func() { second <- w.Put(ctx, Product{ID: id, Name: "second"}) }()
		if e.bubble {
			synctest.Wait() // the second Put is waiting for the first (or done): either order must end right
		}
		close(release)
		require.NoError(t, within(t, "the first Put", first))
		require.NoError(t, within(t, "the second Put", second))
		e.redis.before.Store(nil)
		require.NoError(t, w.Flush(ctx))
		c, _ := e.cached(t, id)
		assert.Equal(t, "second", e.committed(t, id).Name)
		assert.Equal(t, "second", c.Name, "the cache must hold the last write")
	}},
	// Issue: a Put whose cache SET failed left the previous value cached after the
	// commit.
	{"a write whose cache write failed does not leave the older value served", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		for _, failing := range [][]string{{"set"}, {"set", "del"}} {
			ctx := context.Background()
			id := e.id(strings.Join(failing, "-"))
			w, other := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour}), e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour})
			require.NoError(t, w.Put(ctx, Product{ID: id, Name: "v1"}))
			require.NoError(t, w.Flush(ctx))
			e.redis.failing(failing...)
			require.NoError(t, w.Put(ctx, Product{ID: id, Name: "v2"}), "the write is accepted whatever the cache does")
			require.NoError(t, w.Flush(ctx))
			got, err := w.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, "v2", got.Name, "%v failing: read after the commit", failing)
			e.redis.healthy()
			require.NoError(t, w.Flush(ctx)) // a flush also deletes what the failed writes left cached
			for i, q := range []*WriteBehind{w, other} {
				got, err := q.Get(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, "v2", got.Name, "%v failing: instance %d once Redis is back", failing, i)
			}
			assert.EqualValues(t, 1, w.Stats().CacheErrors)
		}
	}},
	// Issue: one row the database rejected sent the whole batch back to the buffer,
	// so nothing committed, Puts blocked at MaxPending and Close lost everything.
	{"a row the database rejects is dropped alone", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		bad := e.id("bad")
		require.NoError(t, e.store.PutBatch(ctx, []Product{{ID: bad, Name: "committed", PriceCents: 5}}))
		var mu sync.Mutex
		var reported []*RejectedError
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Millisecond, MaxPending: 8, OnReject: func(r *RejectedError) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, r)
		}})
		const good = 40
		puts := make(chan error, 1)
		go func() {
			for i := range good {
				if i == good/2 {
					if err := w.Put(ctx, Product{ID: bad, Name: "refused", PriceCents: -1}); err != nil {
						puts <- err
						return
					}
				}
				if err := w.Put(ctx, Product{ID: e.id(fmt.Sprint("good-", i)), PriceCents: int64(i)}); err != nil {
					puts <- err
					return
				}
			}
			puts <- nil
		}()
		require.NoError(t, within(t, "Puts around a rejected row", puts))
		require.NoError(t, w.Close(ctx))
		assert.Equal(t, good+1, e.rows(t), "the good rows and the earlier committed one")

		mu.Lock()
		defer mu.Unlock()
		require.Len(t, reported, 1)
		assert.Equal(t, "refused", reported[0].Product.Name)
		assert.ErrorIs(t, reported[0], ErrRejected)
		var pgErr *pgconn.PgError
		if e.backend == "postgres" {
			require.ErrorAs(t, reported[0], &pgErr)
			assert.Equal(t, "23514", pgErr.Code, "check_violation")
		}
		assert.EqualValues(t, 1, w.Stats().Rejected)
		e.reads(t, w, bad, "committed", "reads return the last committed row")
	}},
	{"Flush and Close return the rows the database rejected", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		for _, end := range []string{"Flush", "Close"} {
			w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour})
			require.NoError(t, w.Put(ctx, Product{ID: e.id(end + "-ok")}))
			require.NoError(t, w.Put(ctx, Product{ID: e.id(end + "-bad"), PriceCents: -1}))
			var err error
			if end == "Flush" {
				err = w.Flush(ctx)
			} else {
				err = w.Close(ctx)
			}
			var rj *RejectedError
			require.ErrorAs(t, err, &rj, end)
			assert.Equal(t, e.id(end+"-bad"), rj.Product.ID)
			assert.Equal(t, e.id(end+"-ok"), e.committed(t, e.id(end+"-ok")).ID)
		}
	}},
	// Loss window, counted: with no timed flush the buffer is flushed each time it
	// fills, so after 1000 writes with MaxPending 64, 1000 mod 64 = 40 are buffered.
	{"a crash loses the writes not yet committed and no more", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		const n, window = 1000, 64
		ctx := context.Background()
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour, MaxPending: window})
		for i := range n {
			require.NoError(t, w.Put(ctx, Product{ID: e.id(fmt.Sprint("v", i))}))
			require.LessOrEqual(t, w.Stats().Pending, window)
		}
		lost := w.Crash()
		assert.Equal(t, n%window, lost)
		assert.Equal(t, n-lost, e.rows(t))
		assert.Zero(t, w.Crash(), "a second Crash")
		assert.ErrorIs(t, w.Put(ctx, Product{ID: e.id("late")}), ErrClosed)
	}},
	{"a clean shutdown loses nothing", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		const n = 1000
		ctx := context.Background()
		w := e.openWB(t, WriteBehindOptions{FlushInterval: 50 * time.Millisecond, MaxPending: 64})
		for i := range n {
			require.NoError(t, w.Put(ctx, Product{ID: e.id(fmt.Sprint("v", i)), PriceCents: int64(i)}))
		}
		require.NoError(t, w.Close(ctx))
		assert.Equal(t, n, e.rows(t))
		assert.ErrorIs(t, w.Put(ctx, Product{ID: e.id("late")}), ErrClosed)
		assert.ErrorIs(t, w.Flush(ctx), ErrClosed)
		assert.NoError(t, w.Close(ctx), "a second Close")
	}},
	// The article: data loss "if the cache crashes before the flush completes". The
	// buffer is in this process: losing the cache loses nothing.
	{"the cache going down loses no write", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		const n = 100
		ctx := context.Background()
		e.cfg = e.deadRedis(t)
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour, MaxPending: 16})
		for i := range n {
			require.NoError(t, w.Put(ctx, Product{ID: e.id(fmt.Sprint("v", i))}))
		}
		require.NoError(t, w.Close(ctx))
		assert.Equal(t, n, e.rows(t))
		assert.EqualValues(t, n, w.Stats().CacheErrors)
	}},
	{"with the database down Puts block at MaxPending and the newest write wins", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		ctx := context.Background()
		var mu sync.Mutex
		var flushErrs []error
		w := e.openWB(t, WriteBehindOptions{FlushInterval: 10 * time.Millisecond, MaxPending: 10, OnFlushError: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			flushErrs = append(flushErrs, err)
		}})
		e.fault.down.Store(true)
		for i := range 10 {
			require.NoError(t, w.Put(ctx, Product{ID: e.id(fmt.Sprint("p", i)), PriceCents: 1}))
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, w.Put(short, Product{ID: e.id("p10")}), context.DeadlineExceeded, "an 11th key must wait for room")
		// Overwriting a buffered key needs no room, and must win over the failed batch.
		require.NoError(t, w.Put(ctx, Product{ID: e.id("p3"), PriceCents: 2}))
		got, err := w.Get(ctx, e.id("p3"))
		require.NoError(t, err)
		assert.EqualValues(t, 2, got.PriceCents)
		e.fault.down.Store(false)
		require.NoError(t, w.Close(ctx))
		assert.EqualValues(t, 2, e.committed(t, e.id("p3")).PriceCents)
		assert.Equal(t, 10, e.rows(t))
		mu.Lock()
		defer mu.Unlock()
		assert.NotEmpty(t, flushErrs)
		for _, err := range flushErrs {
			assert.ErrorIs(t, err, errDown)
		}
	}},
	// Issue: Close waited for the background flusher's batch up to FlushTimeout,
	// whatever its ctx said.
	{"Close gives up when its ctx ends", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		for _, tc := range []struct {
			name     string
			inFlight bool // else the database is down
			o        WriteBehindOptions
			want     error
		}{
			{"a batch in flight", true, WriteBehindOptions{FlushInterval: time.Millisecond, FlushTimeout: time.Hour}, context.DeadlineExceeded},
			{"the database down", false, WriteBehindOptions{FlushInterval: time.Hour}, errDown},
		} {
			h := newHold()
			if tc.inFlight {
				e.fault.holdBatch.Store(h)
			}
			w := e.openWB(t, tc.o)
			require.NoError(t, w.Put(context.Background(), Product{ID: e.id(tc.name)}))
			if tc.inFlight {
				within(t, "the background flush", h.entered)
			} else {
				e.fault.down.Store(true)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			closed := make(chan error, 1)
			go func() { closed <- w.Close(ctx) }()
			err := within(t, "Close with its ctx ended", closed)
			cancel()
			assert.ErrorContains(t, err, "1 writes lost", tc.name)
			assert.ErrorIs(t, err, tc.want, tc.name)
			e.fault.holdBatch.Store(nil)
			e.fault.down.Store(false)
		}
		assert.Zero(t, e.rows(t))
	}},
	// Issue: Crash waited for a caller's Flush to give up on its own.
	{"Crash cuts a caller's Flush short", []string{writeBehind}, func(t *testing.T, e *env, _ kind) {
		h := newHold()
		e.fault.holdBatch.Store(h)
		w := e.openWB(t, WriteBehindOptions{FlushInterval: time.Hour, FlushTimeout: time.Hour})
		require.NoError(t, w.Put(context.Background(), Product{ID: e.id("p")}))
		flushed := make(chan error, 1)
		go func() { flushed <- w.Flush(context.Background()) }()
		within(t, "the caller's flush", h.entered)
		crashed := make(chan int, 1)
		go func() { crashed <- w.Crash() }()
		assert.Equal(t, 1, within(t, "Crash during a caller's Flush", crashed))
		assert.ErrorIs(t, within(t, "the Flush cut short", flushed), context.Canceled)
		assert.Zero(t, e.rows(t))
	}},
}
