package limiter_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota/quotatest"
)

var policy = quota.Policy{Limit: 10, Window: 10 * time.Second, Burst: 4}

func newKeyed(t testing.TB, cfg limiter.Config) *limiter.Keyed {
	t.Helper()
	if cfg.Policy == (quota.Policy{}) {
		cfg.Policy = policy
	}
	k, err := limiter.New(cfg)
	require.NoError(t, err)
	return k
}

// clocked adapts Keyed to quotatest; errors are part of the decision.
type clocked struct{ *limiter.Keyed }

func (c clocked) AllowAt(key string, at time.Time) (quota.Decision, error) {
	return c.Keyed.AllowAt(key, at)
}

var base = time.Unix(1_750_000_000, 0)

// Remaining, RetryAfter and Reset tell the truth (to the nanosecond rounding
// of x/time/rate's float tokens).
func TestKeyedDecisionsAreExact(t *testing.T) {
	for seed := range uint64(3) {
		k := newKeyed(t, limiter.Config{MaxKeys: 1000})
		quotatest.CheckExact(t, clocked{k}, base, quotatest.Arrivals(seed, 60, 40*time.Second), 15, time.Microsecond)
	}
}

// Keyed is x/time/rate's token bucket: replayed over the same arrivals, a
// rate.Limiter per key admits the same requests and has the same whole
// tokens left after each, for refill intervals that are whole nanoseconds
// (x/time/rate's tokens are floats, Keyed's a count of nanoseconds).
func TestKeyedMatchesXTimeRate(t *testing.T) {
	for _, p := range []quota.Policy{policy, {Limit: 3, Window: 250 * time.Millisecond}, {Limit: 100, Window: time.Minute, Burst: 7}} {
		k := newKeyed(t, limiter.Config{MaxKeys: 10, Policy: p})
		ref := rate.NewLimiter(rate.Every(p.Window/time.Duration(p.Limit)), p.BurstSize())
		offs := quotatest.Arrivals(11, 500, 50*p.Window)
		for _, off := range offs {
			at := base.Add(off)
			d, err := k.AllowAt("c", at)
			require.NoError(t, err)
			want := ref.AllowN(at, 1)
			require.Equal(t, want, d.Allowed, "%v at %v", p, off)
			require.Equal(t, int(math.Floor(ref.TokensAt(at)+1e-9)), d.Remaining, "%v at %v", p, off)
		}
	}
}

// A token bucket bounds the rate, not the window: at most Burst + d × rate
// in any interval d.
func TestKeyedIsATokenBucket(t *testing.T) {
	k := newKeyed(t, limiter.Config{MaxKeys: 1000})
	offs := quotatest.Arrivals(7, 400, 2*time.Minute)
	at := quotatest.Admitted(base, offs, quotatest.Replay(t, clocked{k}, "c", base, offs))
	for i := range at {
		for j := i; j < len(at); j++ {
			bound := float64(policy.BurstSize()) + at[j].Sub(at[i]).Seconds()*float64(policy.Limit)/policy.Window.Seconds()
			require.LessOrEqual(t, float64(j-i+1), bound+1e-9)
		}
	}
}

// On the wall clock (a synctest bubble's fake one): a drained bucket refills
// one token per interval, and a refilled key is the one eviction drops.
func TestKeyedRefillsAndEvictsOnTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newKeyed(t, limiter.Config{MaxKeys: 4, Shards: 1, WhenFull: limiter.DenyNew})
		allow := func(key string) (bool, error) {
			d, err := k.Allow(t.Context(), key)
			return d.Allowed, err
		}
		for range policy.BurstSize() {
			ok, err := allow("busy")
			require.NoError(t, err)
			require.True(t, ok)
		}
		ok, _ := allow("busy")
		assert.False(t, ok, "burst spent")
		time.Sleep(policy.Interval())
		ok, _ = allow("busy")
		assert.True(t, ok, "one token back after one interval")

		for _, key := range []string{"a", "b", "c"} {
			_, err := allow(key)
			require.NoError(t, err)
		}
		require.Equal(t, 4, k.Len())
		_, err := allow("new")
		assert.ErrorIs(t, err, limiter.ErrFull, "full, and every client still has a partial bucket")

		// a, b and c refill 1 token in one interval; busy needs the burst's worth.
		time.Sleep(policy.Interval())
		_, err = allow("new")
		require.NoError(t, err, "a refilled key made room")
		assert.LessOrEqual(t, k.Len(), 4, "a refilled one of a, b and c dropped for new")
		d, err := k.Allow(t.Context(), "busy")
		require.NoError(t, err)
		assert.Less(t, d.Remaining, policy.BurstSize()-1, "busy kept its bucket: it was not refilled, so not evicted")
	})
}

// EvictFullest never refuses: it drops the sampled client with the most
// tokens, the smallest change to anyone's limit.
func TestEvictFullestKeepsTheCap(t *testing.T) {
	k := newKeyed(t, limiter.Config{MaxKeys: 64, Shards: 4})
	for i := range 10_000 {
		d, err := k.AllowAt(fmt.Sprint("flood-", i), base)
		require.NoError(t, err)
		require.True(t, d.Allowed, "a new key starts with a full bucket")
	}
	assert.LessOrEqual(t, k.Len(), 64)
}

// MaxKeys caps the whole table, not each shard: 100 clients fit in a
// 100-key table over 64 shards, the 101st is refused (DenyNew). With a
// per-shard cap of 100/64 = 1 key, ErrFull came at the 3rd to 10th client.
func TestCapIsMaxKeysNotPerShard(t *testing.T) {
	hourly := quota.Policy{Limit: 1, Window: time.Hour} // a used bucket stays partial: nothing to drop
	for _, shards := range []int{0, 1, 64, 256} {
		k := newKeyed(t, limiter.Config{MaxKeys: 100, Shards: shards, WhenFull: limiter.DenyNew, Policy: hourly})
		for i := range 100 {
			_, err := k.AllowAt(fmt.Sprint("client-", i), base)
			require.NoError(t, err, "shards %d: client %d of 100", shards, i+1)
		}
		assert.Equal(t, 100, k.Len())
		_, err := k.AllowAt("client-100", base)
		assert.ErrorIs(t, err, limiter.ErrFull, "shards %d: the 101st", shards)
	}
}

// A limited key stays limited while other keys come and go: eviction picks
// the fullest of a sample drawn across shards, and never makes room by
// dropping the limited key while fuller ones are held. Two cases: 40
// clients taking turns in a 100-key table (no eviction is needed at all),
// and one drained client among 10,000 one-shot keys flooding a full table.
// With a per-shard cap, clients sharing a 1-key shard evicted each other
// and came back with full buckets (199 of 200 admitted at 1 per hour).
func TestLimitedKeyStaysLimitedUnderEviction(t *testing.T) {
	hourly := quota.Policy{Limit: 1, Window: time.Hour}
	k := newKeyed(t, limiter.Config{MaxKeys: 100, Policy: hourly})
	admitted := 0
	for round := range 20 {
		for c := range 40 {
			d, err := k.AllowAt(fmt.Sprint("client-", c), base.Add(time.Duration(round)*time.Second))
			require.NoError(t, err)
			if d.Allowed {
				admitted++
			}
		}
	}
	assert.Equal(t, 40, admitted, "one token per client per hour, 20 rounds")

	burst := quota.Policy{Limit: 10, Window: time.Hour}
	k = newKeyed(t, limiter.Config{MaxKeys: 100, Policy: burst})
	for range 10 {
		d, err := k.AllowAt("drained", base)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	for i := range 10_000 {
		_, err := k.AllowAt(fmt.Sprint("flood-", i), base) // each keeps 9 of 10 tokens
		require.NoError(t, err)
		d, err := k.AllowAt("drained", base)
		require.NoError(t, err)
		require.False(t, d.Allowed, "the drained client after %d flood keys", i+1)
	}
	assert.Equal(t, 100, k.Len())
}

// A flood of distinct keys (spoofed headers, rotating IPv6 addresses) keeps
// memory at the cap; without one it grows with every key. Measured, not
// asserted tightly: the heap after a flood of 50,000 keys must stay under
// twice what the cap's worth of keys costs.
func TestFloodOfDistinctKeysIsBounded(t *testing.T) {
	const maxKeys, flood = 5_000, 50_000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	k := newKeyed(t, limiter.Config{MaxKeys: maxKeys})
	for i := range maxKeys {
		_, _ = k.AllowAt(fmt.Sprint("warm-", i), base)
	}
	atCap := heap() - h0
	for i := range flood {
		_, _ = k.AllowAt(fmt.Sprint("flood-", i), base.Add(time.Duration(i)*time.Microsecond))
	}
	afterFlood := heap() - h0
	assert.LessOrEqual(t, k.Len(), maxKeys)
	assert.Less(t, afterFlood, 2*atCap, "heap after the flood %d B vs %d B at the cap", afterFlood, atCap)
	t.Logf("%d keys: %d B (%.0f B/key); after %d more distinct keys: %d B, %d keys held",
		maxKeys, atCap, float64(atCap)/maxKeys, flood, afterFlood, k.Len())
	runtime.KeepAlive(k)
}

// Many goroutines on one key: exactly Burst admitted at one instant, no race.
func TestKeyedConcurrentOneKey(t *testing.T) {
	k := newKeyed(t, limiter.Config{MaxKeys: 10, Policy: quota.Policy{Limit: 100, Window: time.Hour}})
	var admitted sync.Map
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				if d, err := k.AllowAt("one", base); err == nil && d.Allowed {
					admitted.Store(fmt.Sprint(g, "-", i), true)
				}
			}
		})
	}
	wg.Wait()
	n := 0
	admitted.Range(func(_, _ any) bool { n++; return true })
	assert.Equal(t, 100, n)
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg limiter.Config
		msg string
	}{
		{limiter.Config{Policy: policy}, "MaxKeys 0"},
		{limiter.Config{Policy: policy, MaxKeys: 1, Shards: -1}, "Shards -1"},
		{limiter.Config{Policy: quota.Policy{Limit: 1}, MaxKeys: 1}, "window 0s"},
	} {
		_, err := limiter.New(tt.cfg)
		assert.ErrorContains(t, err, tt.msg)
	}
}

// With EvictFullest a new key always gets a bucket: the table makes room,
// wherever its keys sit. A table of 2 keys over 64 shards holds them in at
// most 2 shards; the reclaim used to look at the new key's shard and 8
// others, usually all empty, and returned ErrFull, which the middleware
// turns into the route's fail-open or fail-closed answer. The same with 16
// goroutines inserting at once into a 64-key table, where busy shards were
// skipped.
func TestEvictFullestNeverRefuses(t *testing.T) {
	hourly := quota.Policy{Limit: 1, Window: time.Hour} // nothing refills: every insert must evict
	k := newKeyed(t, limiter.Config{MaxKeys: 2, Shards: 64, Policy: hourly})
	for i := range 1000 {
		_, err := k.AllowAt(fmt.Sprint("client-", i), base)
		require.NoError(t, err, "client %d", i)
	}
	assert.Equal(t, 2, k.Len())

	k = newKeyed(t, limiter.Config{MaxKeys: 64, Shards: 64, Policy: hourly})
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				if _, err := k.AllowAt(fmt.Sprint(g, "-", i), base); err != nil {
					errs <- fmt.Errorf("goroutine %d, key %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.LessOrEqual(t, k.Len(), 64)
}

// Keys whose 64-bit hashes collide keep separate buckets: the table is
// keyed by the hash that chose the shard, and a key whose hash another key
// holds goes to a second, string-keyed map. Here every key gets hash 7: the
// drained client stays refused, its neighbours are admitted, refilled ones
// are dropped and the cap holds across both maps.
func TestCollidingHashesKeepSeparateBuckets(t *testing.T) {
	hourly := quota.Policy{Limit: 1, Window: time.Hour}
	k := newKeyed(t, limiter.Config{MaxKeys: 3, Shards: 1, WhenFull: limiter.DenyNew, Policy: hourly})
	allow := func(key string, at time.Time) (quota.Decision, error) { return k.AllowHashed(key, 7, at) }

	for _, key := range []string{"a", "b", "c"} {
		d, err := allow(key, base)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "%s: a new key starts with a full bucket", key)
	}
	for _, key := range []string{"a", "b", "c"} {
		d, err := allow(key, base)
		require.NoError(t, err)
		assert.False(t, d.Allowed, "%s: its own bucket is drained, not a neighbour's", key)
	}
	assert.Equal(t, 3, k.Len())
	_, err := allow("d", base)
	require.ErrorIs(t, err, limiter.ErrFull, "the cap counts spilled keys")

	// After an hour every bucket has refilled: inserts drop them, and the
	// keys that come back start full, each in its own bucket again.
	later := base.Add(hourly.Window)
	for _, key := range []string{"d", "b", "e"} {
		d, err := allow(key, later)
		require.NoError(t, err, key)
		assert.True(t, d.Allowed, key)
	}
	assert.LessOrEqual(t, k.Len(), 3)
	for _, key := range []string{"d", "b", "e"} {
		d, err := allow(key, later)
		require.NoError(t, err)
		assert.False(t, d.Allowed, "%s: drained once, in its own bucket", key)
	}
}

// AllowAt's instant may lie anywhere in time.Time's range (a zero Time,
// a clock read wrong): it is in ns since the limiter's epoch, which
// saturates at ±292 years. A bucket used at one end and checked at the
// other does not wrap around int64 into a debt of centuries, and one used
// at the saturated instant drains like any other.
func TestKeyedInstantsAtTheEndsOfTime(t *testing.T) {
	hourly := quota.Policy{Limit: 1, Window: time.Hour, Burst: 3}
	past, future := time.Time{}, time.Unix(1<<62, 0)

	k := newKeyed(t, limiter.Config{MaxKeys: 10, Policy: hourly})
	d, err := k.AllowAt("zero-time", past)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "a new key starts full")
	later := time.Now().Add(2 * time.Hour) // after the limiter's epoch by more than an interval
	d, err = k.AllowAt("zero-time", later)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "centuries later its bucket has refilled")
	assert.Equal(t, 2, d.Remaining)

	for _, at := range []time.Time{future, past} {
		for i := range 3 {
			d, err = k.AllowAt(at.String(), at)
			require.NoError(t, err)
			require.True(t, d.Allowed, "%v: check %d of a burst of 3", at, i)
			assert.Equal(t, 2-i, d.Remaining, "%v: check %d", at, i)
		}
		d, err = k.AllowAt(at.String(), at)
		require.NoError(t, err)
		assert.False(t, d.Allowed, "%v: the burst is spent and no time has passed", at)
		assert.Equal(t, hourly.Window, d.RetryAfter, "%v", at)
	}
}

// Goroutines checking many keys at once, in phases a window apart (every
// bucket of the previous phase has refilled, so inserts drop those entries
// while other keys are checked: the index deletes, shifts back and shrinks
// under load). Half the keys are given colliding hashes (four hashes for
// 150 keys), so the spill map is read and written concurrently too. Each
// key of a phase is admitted exactly Burst times, however the checks
// interleave, and the table never holds more than MaxKeys.
func TestKeyedConcurrentManyKeysExact(t *testing.T) {
	const (
		keys, perPhase, phases, goroutines, rounds = 300, 100, 12, 4, 2
	)
	p := quota.Policy{Limit: 3, Window: time.Hour}
	k := newKeyed(t, limiter.Config{MaxKeys: keys, Shards: 4, WhenFull: limiter.DenyNew, Policy: p})
	allow := func(i int, at time.Time) (quota.Decision, error) {
		key := fmt.Sprint("client-", i)
		if i%2 == 1 {
			return k.AllowHashed(key, uint64(i%8+1)*0x9e3779b97f4a7c15, at)
		}
		return k.AllowAt(key, at)
	}
	r := rand.New(rand.NewPCG(8, 9))
	for phase := range phases {
		at := base.Add(time.Duration(phase) * p.Window)
		set := r.Perm(keys)[:perPhase]
		admitted := make([]atomic.Int32, keys)
		errs := make(chan error, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			order := slices.Clone(set)
			rand.New(rand.NewPCG(uint64(phase), uint64(g))).Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			wg.Go(func() {
				for range rounds {
					for _, i := range order {
						d, err := allow(i, at)
						if err != nil {
							errs <- fmt.Errorf("client-%d: %w", i, err)
							return
						}
						if d.Allowed {
							admitted[i].Add(1)
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "phase %d", phase)
		}
		for _, i := range set {
			assert.Equal(t, int32(p.Limit), admitted[i].Load(), "phase %d client-%d", phase, i)
		}
		assert.LessOrEqual(t, k.Len(), keys, "phase %d", phase)
	}
}

// Eviction where every key has the same hash (one in the index, the rest
// spilled): a flood of new keys into a full table evicts spilled and
// indexed entries alike, the cap counts both, and the drained client, in
// the index or in spill as evictions move its neighbours, stays refused.
func TestEvictionOfCollidingKeys(t *testing.T) {
	burst := quota.Policy{Limit: 10, Window: time.Hour}
	for _, first := range []string{"drained", "other"} { // drained in the index, then in spill
		k := newKeyed(t, limiter.Config{MaxKeys: 50, Shards: 1, Policy: burst})
		allow := func(key string) (quota.Decision, error) { return k.AllowHashed(key, 7, base) }
		_, err := allow(first)
		require.NoError(t, err)
		held := 1 // keys before the flood
		if first != "drained" {
			held = 2
		}
		for d := (quota.Decision{Remaining: 1}); d.Remaining > 0; {
			d, err = allow("drained")
			require.NoError(t, err)
			require.True(t, d.Allowed)
		}
		for i := range 2_000 {
			d, err := allow(fmt.Sprint("flood-", i)) // each keeps 9 of 10 tokens
			require.NoError(t, err)
			require.True(t, d.Allowed, "flood-%d starts full", i)
			d, err = allow("drained")
			require.NoError(t, err)
			require.False(t, d.Allowed, "%s first: the drained client after %d flood keys", first, i+1)
			require.Equal(t, min(held+i+1, 50), k.Len(), "%s first: after %d flood keys", first, i+1)
		}
	}
}
