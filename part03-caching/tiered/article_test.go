package tiered

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// articleTier models the article's TieredCache L1: a sync.Map of entries that
// carry their expiry time, a TTL field with no constructor (its zero value is
// a TTL of 0), and a Get that deletes an expired entry after loading it.
// between, when set, runs between that Load and that Delete, so a test can
// place a concurrent Set exactly there.
type articleTier struct {
	m       sync.Map
	ttl     time.Duration
	between func()
}

type articleTierEntry struct {
	v   string
	exp time.Time
}

func (a *articleTier) get(k string) (string, bool) {
	if raw, ok := a.m.Load(k); ok {
		e := raw.(*articleTierEntry)
		if time.Now().Before(e.exp) {
			return e.v, true
		}
		if a.between != nil {
			a.between()
		}
		a.m.Delete(k)
	}
	return "", false
}

func (a *articleTier) set(k, v string) { a.m.Store(k, &articleTierEntry{v, time.Now().Add(a.ttl)}) }

// The article's TieredCache has no constructor, so a TieredCache{} (or one
// whose localTTL was never set) stores every entry already expired: expiry =
// now + 0, and Get asks for now < expiry. Not one of 1,000 reads right after
// the Set hits, on the real clock or on a fake one that does not move at all.
// A Local built from zero LocalOptions takes the default TTL (1 s) and hits.
func TestArticleTieredCacheZeroTTLNeverHits(t *testing.T) {
	check := func(t *testing.T) {
		var a articleTier
		l := newLocal[string](t, LocalOptions{})
		hits, ours := 0, 0
		for i := range 1000 {
			k := "product:" + strconv.Itoa(i)
			a.set(k, "v")
			l.Set(k, "v")
			if _, ok := a.get(k); ok {
				hits++
			}
			if _, ok := l.Get(k); ok {
				ours++
			}
		}
		assert.Zero(t, hits, "the article's L1 hit with a zero TTL")
		assert.Equal(t, 1000, ours)
	}
	t.Run("real clock", check)
	t.Run("fake clock", func(t *testing.T) { synctest.Test(t, check) })
}

// The article's sync.Map is unbounded: an expired entry goes only when its own
// key is read again. 100,000 keys set with a 1 ms TTL are all still held a
// second later (the test logs the heap they keep); a Local keeps at most its
// capacity, whatever is written.
func TestArticleTieredCacheIsUnbounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 100_000
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a := &articleTier{ttl: time.Millisecond}
		for i := range n {
			a.set("product:"+strconv.Itoa(i), "v")
		}
		time.Sleep(time.Second)
		held := 0
		a.m.Range(func(any, any) bool { held++; return true })
		runtime.GC()
		runtime.ReadMemStats(&after)
		t.Logf("%d expired entries held, heap %.1f MiB larger (%.0f B per entry)", held,
			float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), float64(after.HeapAlloc-before.HeapAlloc)/n)
		assert.Equal(t, n, held)
		runtime.KeepAlive(a)

		l := newLocal[string](t, LocalOptions{MaxEntries: 1000, TTL: time.Millisecond})
		for i := range n {
			l.Set("product:"+strconv.Itoa(i), "v")
		}
		assert.LessOrEqual(t, l.Len(), l.Capacity())
	})
}

// The article's Get loads an entry, finds it expired, then deletes the key: a
// Set of a fresh value between the Load and the Delete is deleted with it, and
// the next read misses. Here the Set is placed exactly there. Local.Get never
// deletes; expired entries go when a Set samples them, under the shard lock.
func TestArticleTieredCacheGetDeletesAFreshSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &articleTier{ttl: time.Millisecond}
		a.set("k", "old")
		time.Sleep(2 * time.Millisecond)
		a.between = func() {
			a.ttl = time.Hour
			a.set("k", "fresh") // another goroutine's Set, at the worst moment
		}
		_, ok := a.get("k")
		require.False(t, ok, "the expired entry")
		a.between = nil
		_, ok = a.get("k")
		assert.False(t, ok, "the fresh value was deleted by the Get that found the old one expired")
	})
}
