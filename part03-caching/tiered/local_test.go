package tiered

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLocalHitMissAndTTL(t *testing.T) {
	clock := fixture.NewClock()
	l := NewLocal[string](LocalOptions{TTL: time.Second, Jitter: -1, Now: clock.Now})
	if _, ok := l.Get("k"); ok {
		t.Fatal("hit on an empty cache")
	}
	l.Set("k", "v")
	if v, ok := l.Get("k"); !ok || v != "v" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	clock.Advance(999 * time.Millisecond)
	if _, ok := l.Get("k"); !ok {
		t.Fatal("expired before its TTL")
	}
	clock.Advance(time.Millisecond)
	if _, ok := l.Get("k"); ok {
		t.Fatal("served after its TTL")
	}
}

func TestLocalJitterShortensWithinBounds(t *testing.T) {
	clock := fixture.NewClock()
	u := 0.0
	l := NewLocal[int](LocalOptions{TTL: time.Second, Jitter: 0.2, Now: clock.Now, Rand: func() float64 { return u }})
	for i, r := range []float64{0, 0.5, 0.999} {
		u = r
		key := fmt.Sprint(i)
		l.Set(key, i)
		life := time.Duration(float64(time.Second) * (1 - 0.2*r))
		start := clock.Now()
		clock.Advance(life - time.Microsecond)
		if _, ok := l.Get(key); !ok {
			t.Fatalf("U=%v: gone before %v", r, life)
		}
		clock.Advance(time.Microsecond)
		if _, ok := l.Get(key); ok {
			t.Fatalf("U=%v: still there at %v", r, clock.Now().Sub(start))
		}
	}
	// The default is 10% jitter; it never lengthens a lifetime past TTL.
	d := NewLocal[int](LocalOptions{TTL: time.Second, Now: clock.Now})
	for i := range 1000 {
		d.Set(fmt.Sprint(i), i)
	}
	clock.Advance(time.Second)
	for i := range 1000 {
		if _, ok := d.Get(fmt.Sprint(i)); ok {
			t.Fatal("an entry outlived TTL")
		}
	}
}

func TestLocalIsBounded(t *testing.T) {
	for _, max := range []int{1, 10, 100, 10_000} {
		l := NewLocal[int](LocalOptions{MaxEntries: max, TTL: time.Hour})
		if c := l.Capacity(); c < max || c > max+255 {
			t.Fatalf("max %d: capacity %d", max, c)
		}
		for i := range 3 * max {
			l.Set(fmt.Sprint(i), i)
		}
		if n := l.Len(); n > l.Capacity() {
			t.Fatalf("max %d: %d entries, capacity %d", max, n, l.Capacity())
		}
	}
}

// TestLocalEvictionKeepsReadEntries: with 4 hot entries in a 16-entry shard and 5
// samples per eviction, every sample contains an unread entry, so the hot ones
// (re-read between inserts) can never be chosen.
func TestLocalEvictionKeepsReadEntries(t *testing.T) {
	l := NewLocal[int](LocalOptions{MaxEntries: 16, TTL: time.Hour})
	if len(l.shards) != 1 {
		t.Fatalf("want one shard for 16 entries, got %d", len(l.shards))
	}
	for i := range 16 {
		l.Set(fmt.Sprint("k", i), i)
	}
	for round := range 200 {
		for i := range 4 {
			if _, ok := l.Get(fmt.Sprint("k", i)); !ok {
				t.Fatalf("round %d: hot entry k%d evicted", round, i)
			}
		}
		l.Set(fmt.Sprint("cold", round), round)
	}
	if l.Len() != 16 {
		t.Fatalf("len = %d", l.Len())
	}
}

func TestLocalHitDoesNotAllocate(t *testing.T) {
	l := NewLocal[[]byte](LocalOptions{TTL: time.Hour})
	l.Set("product:42", []byte("payload"))
	key := "product:42"
	if a := testing.AllocsPerRun(1000, func() { _, _ = l.Get(key) }); a != 0 {
		t.Fatalf("L1 hit allocates %.1f times", a)
	}
}

func TestLocalDeleteClearConcurrent(t *testing.T) {
	l := NewLocal[int](LocalOptions{MaxEntries: 1000, TTL: time.Hour})
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
	if l.Len() != 0 {
		t.Fatalf("len after Clear = %d", l.Len())
	}
}
