package tiered

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func newLocal[V any](t testing.TB, o LocalOptions) *Local[V] {
	t.Helper()
	l, err := NewLocal[V](o)
	require.NoError(t, err)
	t.Cleanup(l.Close) // its clock goroutine must not outlive a synctest bubble
	return l
}

func TestLocalHitMissAndTTL(t *testing.T) {
	clock := fixture.NewClock()
	l := newLocal[string](t, LocalOptions{TTL: time.Second, NoJitter: true, Now: clock.Now})
	_, ok := l.Get("k")
	require.False(t, ok, "hit on an empty cache")
	l.Set("k", "v")
	v, ok := l.Get("k")
	require.True(t, ok)
	assert.Equal(t, "v", v)
	clock.Advance(999 * time.Millisecond)
	_, ok = l.Get("k")
	assert.True(t, ok, "expired before its TTL")
	clock.Advance(time.Millisecond)
	_, ok = l.Get("k")
	assert.False(t, ok, "served after its TTL")
}

// TestLocalOptionsValidated: out-of-range options are errors, not silently clamped or
// overflowed. Before validation, TTL = math.MaxInt64 overflowed the expiry
// (now + TTL < now), so every entry was born expired and L1 never hit.
func TestLocalOptionsValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    LocalOptions
	}{
		{"TTL overflows the expiry", LocalOptions{TTL: math.MaxInt64, NoJitter: true}},
		{"TTL above MaxLocalTTL", LocalOptions{TTL: MaxLocalTTL + time.Nanosecond}},
		{"negative TTL", LocalOptions{TTL: -time.Second}},
		{"negative jitter", LocalOptions{Jitter: -1}},
		{"jitter of 1 (lifetime 0)", LocalOptions{Jitter: 1}},
		{"NaN jitter", LocalOptions{Jitter: math.NaN()}},
		{"negative MaxEntries", LocalOptions{MaxEntries: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewLocal[string](tc.o)
			require.ErrorIs(t, err, ErrLocalOptions)
			t.Log(err)
		})
	}
	// The longest TTL accepted works: an entry lives until just before it.
	clock := fixture.NewClock()
	l := newLocal[string](t, LocalOptions{TTL: MaxLocalTTL, NoJitter: true, Now: clock.Now})
	l.Set("k", "v")
	clock.Advance(MaxLocalTTL - time.Nanosecond)
	_, ok := l.Get("k")
	assert.True(t, ok, "an entry with TTL = MaxLocalTTL must live that long")
}

func TestLocalJitterShortensWithinBounds(t *testing.T) {
	clock := fixture.NewClock()
	u := 0.0
	l := newLocal[int](t, LocalOptions{TTL: time.Second, Jitter: 0.2, Now: clock.Now, Rand: func() float64 { return u }})
	for i, r := range []float64{0, 0.5, 0.999} {
		u = r
		key := fmt.Sprint(i)
		l.Set(key, i)
		life := time.Duration(float64(time.Second) * (1 - 0.2*r))
		clock.Advance(life - time.Microsecond)
		_, ok := l.Get(key)
		require.True(t, ok, "U=%v: gone before %v", r, life)
		clock.Advance(time.Microsecond)
		_, ok = l.Get(key)
		require.False(t, ok, "U=%v: still there at %v", r, life)
	}
	// The default is 10% jitter; it never lengthens a lifetime past TTL.
	d := newLocal[int](t, LocalOptions{TTL: time.Second, Now: clock.Now})
	for i := range 1000 {
		d.Set(fmt.Sprint(i), i)
	}
	clock.Advance(time.Second)
	for i := range 1000 {
		_, ok := d.Get(fmt.Sprint(i))
		require.False(t, ok, "an entry outlived TTL")
	}
}

func TestLocalIsBounded(t *testing.T) {
	for _, maxEntries := range []int{1, 10, 100, 10_000} {
		l := newLocal[int](t, LocalOptions{MaxEntries: maxEntries, TTL: time.Hour})
		require.GreaterOrEqual(t, l.Capacity(), maxEntries)
		require.LessOrEqual(t, l.Capacity(), maxEntries+255)
		for i := range 3 * maxEntries {
			l.Set(fmt.Sprint(i), i)
		}
		assert.LessOrEqual(t, l.Len(), l.Capacity(), "max %d", maxEntries)
	}
}

// TestLocalEvictionKeepsReadEntries: with 4 hot entries in a 16-entry shard and 5
// samples per eviction, every sample contains an unread entry, so the hot ones
// (re-read between inserts) can never be chosen.
func TestLocalEvictionKeepsReadEntries(t *testing.T) {
	l := newLocal[int](t, LocalOptions{MaxEntries: 16, TTL: time.Hour})
	require.Len(t, l.shards, 1, "want one shard for 16 entries")
	for i := range 16 {
		l.Set(fmt.Sprint("k", i), i)
	}
	for round := range 200 {
		for i := range 4 {
			_, ok := l.Get(fmt.Sprint("k", i))
			require.True(t, ok, "round %d: hot entry k%d evicted", round, i)
		}
		l.Set(fmt.Sprint("cold", round), round)
	}
	assert.Equal(t, 16, l.Len())
}

func TestLocalHitDoesNotAllocate(t *testing.T) {
	l := newLocal[[]byte](t, LocalOptions{TTL: time.Hour})
	l.Set("product:42", []byte("payload"))
	key := "product:42"
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = l.Get(key) }), "L1 hit allocates")
}

// TestLocalNeverOutlivesItsCap: an entry stored with a lifetime cap (a Cache passes
// the L2 entry's remaining TTL) expires at the cap, not at the L1 TTL.
func TestLocalNeverOutlivesItsCap(t *testing.T) {
	clock := fixture.NewClock()
	l := newLocal[int](t, LocalOptions{TTL: time.Hour, NoJitter: true, Now: clock.Now})
	l.setIf("capped", 1, 300*time.Millisecond, nil)
	l.setIf("gone", 2, -1, nil)
	_, ok := l.Get("gone")
	assert.False(t, ok, "a negative cap stores nothing")
	clock.Advance(299 * time.Millisecond)
	_, ok = l.Get("capped")
	assert.True(t, ok)
	clock.Advance(time.Millisecond)
	_, ok = l.Get("capped")
	assert.False(t, ok, "served past its cap")
}

func TestLocalDeleteClearConcurrent(t *testing.T) {
	l := newLocal[int](t, LocalOptions{MaxEntries: 1000, TTL: time.Hour})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprint(i % 300)
				switch (i + g) % 4 {
				case 0:
					l.Set(k, i)
				case 1:
					l.Get(k)
				case 2:
					l.Delete(k)
				default:
					if i%500 == 0 {
						l.Clear()
					}
				}
			}
		})
	}
	wg.Wait()
	l.Clear()
	assert.Zero(t, l.Len())
}
