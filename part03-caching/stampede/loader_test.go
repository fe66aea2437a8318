package stampede

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// countingFetch returns value or err and counts calls; it advances the clock by
// took so the Loader measures a non-zero δ.
func countingFetch(clock *fixture.Clock, took time.Duration, value string, err *error) (func(context.Context) (string, error), *atomic.Int64) {
	var n atomic.Int64
	return func(context.Context) (string, error) {
		n.Add(1)
		clock.Advance(took)
		if err != nil && *err != nil {
			return "", *err
		}
		return value, nil
	}, &n
}

func TestLoaderPlainTTL(t *testing.T) {
	clock := fixture.NewClock()
	l := &Loader[string]{Store: &MapStore[string]{}, TTL: time.Minute, Now: clock.Now}
	fetch, calls := countingFetch(clock, 5*time.Millisecond, "v1", nil)
	ctx := context.Background()

	for range 3 {
		if v, err := l.Get(ctx, "k", fetch); err != nil || v != "v1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("backend calls = %d, want 1 (then hits)", calls.Load())
	}
	clock.Advance(time.Minute)
	if _, err := l.Get(ctx, "k", fetch); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("backend calls = %d, want 2 after expiry", calls.Load())
	}
	e, _, _ := l.Store.Get(ctx, "k")
	if e.Delta != 5*time.Millisecond {
		t.Fatalf("δ = %v, want the measured 5ms", e.Delta)
	}
}

func TestLoaderServesStaleWhenEarlyRefreshFails(t *testing.T) {
	clock := fixture.NewClock()
	l := &Loader[string]{
		Store: &MapStore[string]{}, TTL: time.Minute, Now: clock.Now,
		XFetch: &XFetch{Rand: func() float64 { return 0.01 }}, // gap = −ln(0.01)·δ ≈ 4.6δ
	}
	var fail error
	fetch, calls := countingFetch(clock, 10*time.Millisecond, "v1", &fail)
	ctx := context.Background()
	if _, err := l.Get(ctx, "k", fetch); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute - 10*time.Millisecond) // one δ before expiry: inside the 4.6δ gap
	fail = errors.New("db down")
	v, err := l.Get(ctx, "k", fetch)
	if err != nil || v != "v1" {
		t.Fatalf("Get during failed early refresh = %q, %v; want the still-valid v1", v, err)
	}
	if st := l.Stats(); st.EarlyRefreshes != 1 || st.StaleServed != 1 || calls.Load() != 2 {
		t.Fatalf("stats = %+v, calls = %d", st, calls.Load())
	}
}

func TestLoaderServesStaleOnlyWithinGrace(t *testing.T) {
	clock := fixture.NewClock()
	l := &Loader[string]{Store: &MapStore[string]{}, TTL: time.Minute, StaleFor: 30 * time.Second, Now: clock.Now}
	var fail error
	fetch, _ := countingFetch(clock, 0, "v1", &fail)
	ctx := context.Background()
	if _, err := l.Get(ctx, "k", fetch); err != nil {
		t.Fatal(err)
	}
	fail = errors.New("db down")

	clock.Advance(time.Minute + 10*time.Second) // expired, inside the 30 s grace
	if v, err := l.Get(ctx, "k", fetch); err != nil || v != "v1" {
		t.Fatalf("inside grace: %q, %v; want stale v1", v, err)
	}
	clock.Advance(30 * time.Second) // past the grace
	if _, err := l.Get(ctx, "k", fetch); !errors.Is(err, fail) {
		t.Fatalf("past grace: err = %v, want the backend error", err)
	}
}

// TestLoaderXFetchWithGroup is "both together": every request in the early window
// decides to refresh, and the Group turns 1000 such decisions into one backend call.
func TestLoaderXFetchWithGroup(t *testing.T) {
	const n = 1000
	clock := fixture.NewClock()
	g := &Group[string]{}
	l := &Loader[string]{
		Store: &MapStore[string]{}, TTL: time.Minute, Now: clock.Now, Group: g,
		XFetch: &XFetch{Rand: func() float64 { return 0.01 }}, // gap ≈ 4.6δ
	}
	ctx := context.Background()
	first, _ := countingFetch(clock, 10*time.Millisecond, "v1", nil) // δ > 0, or XFetch never fires
	if _, err := l.Get(ctx, "k", first); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute - 10*time.Millisecond)
	var calls atomic.Int64
	fetch := func(context.Context) (string, error) {
		calls.Add(1)
		waitFor(t, "all refreshers to join", func() bool { return g.Stats().Waiting == n })
		return "v2", nil
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if v, err := l.Get(ctx, "k", fetch); err != nil || v != "v2" {
				t.Errorf("Get = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("backend calls = %d, want 1", calls.Load())
	}
	if st := l.Stats(); st.EarlyRefreshes != n {
		t.Fatalf("early refresh decisions = %d, want %d", st.EarlyRefreshes, n)
	}
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
	if err != nil || v != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if st := l.Stats(); st.StoreErrors != 2 {
		t.Fatalf("store errors = %d, want 2 (read and write)", st.StoreErrors)
	}
}

func TestRedisStoreRoundTrip(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s := RedisStore[string]{Client: rdb, Prefix: "part03:test:"}
	ctx := context.Background()

	if _, ok, err := s.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	exp := time.Date(2026, 1, 1, 0, 0, 1, 123456789, time.UTC)
	want := Entry[string]{Value: "v", Delta: 750 * time.Microsecond, Expiry: exp}
	if err := s.Set(ctx, "k", want, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(ctx, "k")
	if err != nil || !ok || got.Value != "v" || got.Delta != want.Delta || !got.Expiry.Equal(exp) {
		t.Fatalf("got %+v ok=%v err=%v, want %+v (δ kept below 1 ms)", got, ok, err, want)
	}
	if ttl := mr.TTL("part03:test:k"); ttl != 90*time.Second {
		t.Fatalf("Redis TTL = %v, want 90s", ttl)
	}
}

// TestLoaderLateFlightRereadsTheStore: a caller that saw no entry (or an older one)
// but reaches the Group after another flight refilled the key must not fetch again;
// one that saw the current entry (an XFetch early refresh) must.
func TestLoaderLateFlightRereadsTheStore(t *testing.T) {
	clock := fixture.NewClock()
	l := &Loader[string]{Store: &MapStore[string]{}, TTL: time.Minute, Now: clock.Now, Group: &Group[string]{}}
	ctx := context.Background()
	fetch, calls := countingFetch(clock, time.Millisecond, "v", nil)
	if _, err := l.Get(ctx, "k", fetch); err != nil {
		t.Fatal(err)
	}
	cur, _, _ := l.Store.Get(ctx, "k")
	older := cur
	older.Expiry = cur.Expiry.Add(-time.Second)
	for name, seen := range map[string]*Entry[string]{"no entry": nil, "an older entry": &older} {
		if _, err := l.refresh(ctx, "k", fetch, seen); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 1 {
			t.Fatalf("caller that saw %s fetched again although the store was refilled", name)
		}
	}
	if _, err := l.refresh(ctx, "k", fetch, &cur); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatal("an early refresh of the current entry was skipped")
	}
}
