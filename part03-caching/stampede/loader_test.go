package stampede

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// backend is a fetch that takes took (fake time inside a synctest bubble), counts
// its calls, and fails while err is set.
type backend struct {
	took  time.Duration
	value string
	calls atomic.Int64
	mu    sync.Mutex
	err   error
}

func (b *backend) fetch(ctx context.Context) (string, error) {
	b.calls.Add(1)
	time.Sleep(b.took)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.value, b.err
}

func (b *backend) fail(err error) { b.mu.Lock(); b.err = err; b.mu.Unlock() }

func TestLoaderPlainTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &Loader[string]{Store: &MapStore[string]{}, TTL: time.Minute}
		b := &backend{took: 5 * time.Millisecond, value: "v1"}
		ctx := context.Background()
		for range 3 {
			v, err := l.Get(ctx, "k", b.fetch)
			require.NoError(t, err)
			assert.Equal(t, "v1", v)
		}
		assert.Equal(t, int64(1), b.calls.Load(), "backend calls: one, then hits")
		time.Sleep(time.Minute)
		_, err := l.Get(ctx, "k", b.fetch)
		require.NoError(t, err)
		assert.Equal(t, int64(2), b.calls.Load(), "backend calls after expiry")
		e, _, _ := l.Store.Get(ctx, "k")
		assert.Equal(t, 5*time.Millisecond, e.Delta, "δ is the measured fetch time")
	})
}

func TestLoaderServesStaleWhenEarlyRefreshFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &Loader[string]{
			Store: &MapStore[string]{}, TTL: time.Minute,
			XFetch: &XFetch{Rand: func() float64 { return 0.01 }}, // gap = −ln(0.01)·δ ≈ 4.6δ
		}
		b := &backend{took: 10 * time.Millisecond, value: "v1"}
		ctx := context.Background()
		_, err := l.Get(ctx, "k", b.fetch)
		require.NoError(t, err)
		time.Sleep(time.Minute - 10*time.Millisecond) // one δ before expiry: inside the 4.6δ gap
		b.fail(errors.New("db down"))
		v, err := l.Get(ctx, "k", b.fetch)
		require.NoError(t, err, "a failed early refresh must serve the still-valid value")
		assert.Equal(t, "v1", v)
		st := l.Stats()
		assert.Equal(t, int64(1), st.EarlyRefreshes)
		assert.Equal(t, int64(1), st.StaleServed)
		assert.Equal(t, int64(2), b.calls.Load())
	})
}

func TestLoaderServesStaleOnlyWithinGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &Loader[string]{Store: &MapStore[string]{}, TTL: time.Minute, StaleFor: 30 * time.Second}
		b := &backend{value: "v1"}
		ctx := context.Background()
		_, err := l.Get(ctx, "k", b.fetch)
		require.NoError(t, err)
		down := errors.New("db down")
		b.fail(down)

		time.Sleep(time.Minute + 10*time.Second) // expired, inside the 30 s grace
		v, err := l.Get(ctx, "k", b.fetch)
		require.NoError(t, err, "inside the grace")
		assert.Equal(t, "v1", v)
		time.Sleep(30 * time.Second) // past the grace
		_, err = l.Get(ctx, "k", b.fetch)
		assert.ErrorIs(t, err, down, "past the grace the backend error must surface")
	})
}

// TestLoaderXFetchWithGroup is "both together": every request in the early window
// decides to refresh, and the Group turns 1000 such decisions into one backend call.
func TestLoaderXFetchWithGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 1000
		g := &Group[string]{}
		l := &Loader[string]{
			Store: &MapStore[string]{}, TTL: time.Minute, Group: g, Timeout: time.Minute,
			XFetch: &XFetch{Rand: func() float64 { return 0.01 }}, // gap ≈ 4.6δ
		}
		ctx := context.Background()
		first := &backend{took: 10 * time.Millisecond, value: "v1"} // δ > 0, or XFetch never fires
		_, err := l.Get(ctx, "k", first.fetch)
		require.NoError(t, err)
		time.Sleep(time.Minute - 10*time.Millisecond)

		release := make(chan struct{})
		var calls atomic.Int64
		fetch := func(context.Context) (string, error) { calls.Add(1); <-release; return "v2", nil }
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				v, err := l.Get(ctx, "k", fetch)
				assert.NoError(t, err)
				assert.Equal(t, "v2", v)
			})
		}
		synctest.Wait() // all n refreshers have joined the one flight
		close(release)
		wg.Wait()
		assert.Equal(t, int64(1), calls.Load(), "backend calls")
		assert.Equal(t, int64(n), l.Stats().EarlyRefreshes, "early refresh decisions")
	})
}

type brokenStore struct{}

func (brokenStore) Get(context.Context, string) (Entry[string], bool, error) {
	return Entry[string]{}, false, errors.New("redis down")
}
func (brokenStore) Set(context.Context, string, Entry[string], time.Duration) error {
	return errors.New("redis down")
}

func TestLoaderCacheOutageFallsBackToBackend(t *testing.T) {
	l := &Loader[string]{Store: brokenStore{}, TTL: time.Minute, Group: &Group[string]{}}
	v, err := l.Get(context.Background(), "k", func(context.Context) (string, error) { return "v", nil })
	require.NoError(t, err)
	assert.Equal(t, "v", v)
	assert.Equal(t, int64(2), l.Stats().StoreErrors, "store errors: the read and the write")
}

// memClient is a go-redis client on an in-memory miniredis (no port; usable inside a
// synctest bubble, where its TTLs follow the fake clock).
func memClient(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	mr := miniredis.NewMiniRedis()
	mr.ClockTTL(true)
	rdb := redis.NewClient(&redis.Options{
		Addr:   "127.0.0.1:6379", // never dialled; an IP literal keeps NewClient from resolving a host name
		Dialer: func(context.Context, string, string) (net.Conn, error) { return mr.Dial() },
		// Enough connections that no caller waits for one: go-redis's pool-wait path
		// reuses timers across tests through a sync.Pool, which a synctest bubble rejects.
		PoolSize: 256,
	})
	t.Cleanup(func() { _ = rdb.Close(); mr.Close() })
	return mr, rdb
}

func TestRedisStoreRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mr, rdb := memClient(t)
		s := RedisStore[string]{Client: rdb, Prefix: "part03:test:"}
		ctx := context.Background()

		_, ok, err := s.Get(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok, "empty store")
		exp := time.Date(2026, 1, 1, 0, 0, 1, 123456789, time.UTC)
		want := Entry[string]{Value: "v", Delta: 750 * time.Microsecond, Expiry: exp}
		require.NoError(t, s.Set(ctx, "k", want, 90*time.Second))
		got, ok, err := s.Get(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "v", got.Value)
		assert.Equal(t, want.Delta, got.Delta, "δ kept below 1 ms")
		assert.True(t, got.Expiry.Equal(exp))
		assert.Equal(t, 90*time.Second, mr.TTL("part03:test:k"))
		time.Sleep(90 * time.Second)
		_, ok, err = s.Get(ctx, "k")
		require.NoError(t, err)
		assert.False(t, ok, "the Redis TTL (keep) ended the entry")
	})
}

// TestLoaderLateFlightRereadsTheStore: a caller that saw no entry (or an older one)
// but reaches the Group after another flight refilled the key must not fetch again;
// one that saw the current entry (an XFetch early refresh) must.
func TestLoaderLateFlightRereadsTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &Loader[string]{Store: &MapStore[string]{}, TTL: time.Minute, Group: &Group[string]{}}
		ctx := context.Background()
		b := &backend{took: time.Millisecond, value: "v"}
		_, err := l.Get(ctx, "k", b.fetch)
		require.NoError(t, err)
		cur, _, _ := l.Store.Get(ctx, "k")
		older := cur
		older.Expiry = cur.Expiry.Add(-time.Second)
		for name, seen := range map[string]*Entry[string]{"no entry": nil, "an older entry": &older} {
			_, err := l.refresh(ctx, "k", b.fetch, seen)
			require.NoError(t, err)
			require.Equal(t, int64(1), b.calls.Load(), "caller that saw %s fetched again although the store was refilled", name)
		}
		_, err = l.refresh(ctx, "k", b.fetch, &cur)
		require.NoError(t, err)
		assert.Equal(t, int64(2), b.calls.Load(), "an early refresh of the current entry was skipped")
	})
}

// TestLoaderCachesAnEmptyValue: an empty string is a value like any other. The
// article's XFetch treats Value == "" as "no data yet", so a key whose value is empty
// is refetched on every request; the Loader asks the store whether there is an entry.
func TestLoaderCachesAnEmptyValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &Loader[string]{Store: &MapStore[string]{}, TTL: time.Minute, XFetch: &XFetch{}}
		b := &backend{took: time.Millisecond, value: ""}
		for range 100 {
			v, err := l.Get(context.Background(), "product:without-description", b.fetch)
			require.NoError(t, err)
			require.Empty(t, v)
		}
		assert.Equal(t, int64(1), b.calls.Load(), "an empty value was refetched")
	})
}
