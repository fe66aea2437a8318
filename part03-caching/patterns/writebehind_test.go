package patterns

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Write-behind properties that need a clock the test controls: in-process only.

// TestWriteBehindLossWindowAge: writes arrive steadily while the database keeps up;
// whenever the process crashes, every write it loses is younger than FlushInterval
// plus one flush duration.
func TestWriteBehindLossWindowAge(t *testing.T) {
	const interval, latency, every = 100 * time.Millisecond, 7 * time.Millisecond, 3 * time.Millisecond
	for _, crashAt := range []time.Duration{95 * time.Millisecond, 230 * time.Millisecond, 1003 * time.Millisecond, 1234 * time.Millisecond} {
		t.Run(fmt.Sprint("crash at ", crashAt), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := inProcess.newEnv(t)
				e.store.(*MemStore).Latency = latency
				w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: interval})
				ctx := context.Background()
				start := time.Now()
				written := map[string]time.Time{}
				for i := 0; time.Since(start) < crashAt; i++ {
					id := e.id(fmt.Sprint("v", i))
					require.NoError(t, w.Put(ctx, Product{ID: id}))
					written[id] = time.Now()
					time.Sleep(every)
				}
				crash := time.Now()
				lost := w.Crash()
				require.Positive(t, lost, "a crash between flushes loses something")
				n := 0
				for id, at := range written {
					if _, err := e.store.Get(ctx, id); err == nil {
						continue
					}
					n++
					assert.Less(t, crash.Sub(at), interval+latency, "lost %s, written %v before the crash", id, crash.Sub(at))
				}
				assert.Equal(t, lost, n, "Crash reports what is missing from the database")
			})
		})
	}
}

// TestWriteBehindCloseRetriesUntilTheDatabaseReturns: Close with no deadline keeps
// retrying at the flush pace while the database is down, and loses nothing once it
// is back.
func TestWriteBehindCloseRetriesUntilTheDatabaseReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		e := inProcess.newEnv(t)
		w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: interval})
		require.NoError(t, w.Put(context.Background(), Product{ID: e.id("p")}))
		e.fault.down.Store(true)
		closed := make(chan error, 1)
		go func() { closed <- w.Close(context.Background()) }()
		time.Sleep(10*interval - time.Millisecond)
		synctest.Wait()
		select {
		case err := <-closed:
			require.FailNow(t, "Close returned while the database was down", "%v", err)
		default:
		}
		assert.Equal(t, int64(10), e.db.Batches.Load(), "one attempt per FlushInterval")
		e.fault.down.Store(false)
		require.NoError(t, within(t, "Close once the database is back", closed))
		assert.Equal(t, 1, e.rows(t))
	})
}
