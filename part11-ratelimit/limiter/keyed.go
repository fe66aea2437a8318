// Package limiter holds the in-process limiters: Keyed, one token bucket
// (golang.org/x/time/rate) per key in a sharded map whose memory stays
// bounded, and Leaky, a leaky bucket that spaces calls evenly.
//
// The article's ShardedLimiter creates a rate.Limiter for every key it ever
// sees and never removes one, so a client that varies its key (a spoofed
// header, a new source port, an IPv6 /64) grows the map without bound. Keyed
// fixes that without a background goroutine:
//
//   - An entry whose bucket has refilled completely carries no information
//     (a new bucket starts full), so dropping it changes no decision. Each
//     insert samples a few entries of its shard and drops the refilled ones;
//     these are the idle keys.
//   - MaxKeys is a hard cap on the whole table, kept by one atomic count of
//     the keys held (touched only when a key is added or dropped, never on
//     the check of a known key). When the table is full, a sample drawn
//     across shards is searched for a refilled entry first; if none has
//     refilled, WhenFull decides: EvictFullest drops the sampled entry with
//     the most tokens (the smallest change to any client's limit: a drained
//     client is dropped only if every sampled one is as drained), DenyNew
//     refuses the new key with ErrFull, so no tracked client ever gets a
//     fresh quota it did not earn.
//
// Each shard is a plain mutex and a map: a lookup is a hash, one uncontended
// lock in the common case, and no allocation for a key already present.
package limiter

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// ErrFull is returned, with DenyNew, for a key the table has no room for.
// The caller's fail-open or fail-closed policy decides what happens to it.
var ErrFull = errors.New("limiter: key table full")

// Full chooses what a full shard does with a new key.
type Full int

const (
	// EvictFullest drops the sampled entry with the most tokens.
	EvictFullest Full = iota
	// DenyNew refuses the new key with ErrFull.
	DenyNew
)

// Config configures a Keyed limiter.
type Config struct {
	Policy quota.Policy // Limit per Window refills the bucket; Burst (or Limit) is its size
	// MaxKeys caps the keys held across all shards (required); any shard
	// may hold any share of them.
	MaxKeys int
	// Shards is the number of independently locked maps, rounded up to a
	// power of two; 0 means 64. 1 is a single-mutex map.
	Shards   int
	WhenFull Full
}

// sample is how many entries an insert looks at: enough to find a refilled
// one quickly when most are, cheap when none is. A full table samples
// sampleWhenFull entries from its shard and, while it has seen fewer, from
// up to reclaimShards others.
const (
	sampleOnInsert = 2
	sampleWhenFull = 8
	reclaimShards  = 8
)

// Keyed is one token bucket per key. It is safe for concurrent use.
type Keyed struct {
	shards   []shard
	mask     uint64
	seed     maphash.Seed
	policy   quota.Policy
	limit    rate.Limit
	burst    int
	maxKeys  int64
	whenFull Full

	// keys is written on every insert and delete; the padding keeps it off
	// the cache line of the read-only fields every check reads.
	_    [64]byte
	keys atomic.Int64 // held across all shards; at most maxKeys
}

type shard struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
	_  [64 - 16]byte // one cache line per shard: neighbours' locks do not share it
}

// New returns a Keyed limiter for cfg.
func New(cfg Config) (*Keyed, error) {
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxKeys < 1 {
		return nil, fmt.Errorf("limiter: MaxKeys %d, want at least 1", cfg.MaxKeys)
	}
	if cfg.Shards < 0 || cfg.Shards > 1<<16 {
		return nil, fmt.Errorf("limiter: Shards %d is out of range 0..65536", cfg.Shards)
	}
	n := 64
	if cfg.Shards > 0 {
		n = 1
		for n < cfg.Shards {
			n <<= 1
		}
	}
	k := &Keyed{
		shards:   make([]shard, n),
		mask:     uint64(n - 1),
		seed:     maphash.MakeSeed(),
		policy:   cfg.Policy,
		limit:    rate.Limit(float64(cfg.Policy.Limit) / cfg.Policy.Window.Seconds()),
		burst:    cfg.Policy.BurstSize(),
		maxKeys:  int64(cfg.MaxKeys),
		whenFull: cfg.WhenFull,
	}
	for i := range k.shards {
		k.shards[i].m = make(map[string]*rate.Limiter)
	}
	return k, nil
}

// Policy implements quota.Limiter.
func (k *Keyed) Policy() quota.Policy { return k.policy }

// Allow implements quota.Limiter on the wall clock. The only error is
// ErrFull (with DenyNew).
func (k *Keyed) Allow(_ context.Context, key string) (quota.Decision, error) {
	return k.AllowAt(key, time.Now())
}

// AllowAt checks key at time now, like rate.Limiter.AllowN: replaying a
// recorded sequence of requests gives the same decisions every time.
func (k *Keyed) AllowAt(key string, now time.Time) (quota.Decision, error) {
	s := &k.shards[maphash.String(k.seed, key)&k.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.m[key]
	if lim == nil {
		if !k.admit(s, now) {
			return quota.Decision{Limit: max(k.policy.Limit, k.burst), RetryAfter: k.policy.Interval(), Reset: k.policy.Interval(), At: now}, ErrFull
		}
		lim = rate.NewLimiter(k.limit, k.burst)
		s.m[strings.Clone(key)] = lim // the caller's key may share a larger buffer
	}
	ok := lim.AllowN(now, 1)
	return k.decide(ok, lim.TokensAt(now), now), nil
}

// decide turns a bucket's state into a Decision.
func (k *Keyed) decide(ok bool, tokens float64, now time.Time) quota.Decision {
	d := quota.Decision{Allowed: ok, Limit: max(k.policy.Limit, k.burst), Remaining: int(math.Floor(tokens)), At: now}
	perToken := float64(time.Second) / float64(k.limit)
	// Using every whole token now leaves tokens-Remaining; the next one
	// arrives after the missing fraction refills.
	d.Reset = time.Duration(math.Ceil((1 - (tokens - math.Floor(tokens))) * perToken))
	if !ok {
		d.RetryAfter = time.Duration(math.Ceil((1 - tokens) * perToken))
	}
	return d
}

// admit counts one more key for shard s (whose lock the caller holds),
// after dropping the refilled entries among a few of s's. If the table is
// full it reclaims a slot first; it reports whether there is room.
func (k *Keyed) admit(s *shard, now time.Time) bool {
	n := sampleOnInsert
	for key, lim := range s.m { // Go starts a map range at a random entry
		if n--; n < 0 {
			break
		}
		if lim.TokensAt(now) >= float64(k.burst) {
			delete(s.m, key)
			k.keys.Add(-1)
		}
	}
	for range 3 { // other inserts may take the reclaimed slot first
		if k.keys.Add(1) <= k.maxKeys {
			return true
		}
		k.keys.Add(-1)
		if !k.reclaim(s, now) {
			return false
		}
	}
	return false
}

// victim is an entry reclaim may drop.
type victim struct {
	s      *shard
	key    string
	tokens float64
}

// reclaim frees at least one slot of a full table: it samples
// sampleWhenFull entries of s and, while it has seen fewer, of other shards,
// and drops the refilled ones it finds (nothing lost); if there are none,
// with EvictFullest, the one with the most tokens. Other shards are locked with TryLock and skipped when busy:
// the caller holds s, and two callers waiting for each other's shard would
// deadlock.
func (k *Keyed) reclaim(s *shard, now time.Time) bool {
	locked := make([]*shard, 0, reclaimShards)
	defer func() {
		for _, o := range locked {
			o.mu.Unlock()
		}
	}()
	best, seen, dropped := victim{tokens: -1}, 0, false
	look := func(o *shard) bool { // true: dropped a refilled entry
		for key, lim := range o.m {
			if seen >= sampleWhenFull {
				break
			}
			seen++
			t := lim.TokensAt(now)
			if t >= float64(k.burst) { // every refilled one seen: room for the next inserts too
				delete(o.m, key)
				k.keys.Add(-1)
				dropped = true
				continue
			}
			if t > best.tokens {
				best = victim{o, key, t}
			}
		}
		return dropped
	}
	if look(s) {
		return true
	}
	start := rand.Uint64()
	for i := uint64(0); i < reclaimShards && i < uint64(len(k.shards)) && seen < sampleWhenFull; i++ {
		o := &k.shards[(start+i)&k.mask]
		if o == s || !o.mu.TryLock() {
			continue
		}
		locked = append(locked, o)
		if look(o) {
			return true
		}
	}
	if k.whenFull == DenyNew || best.s == nil {
		return false
	}
	delete(best.s.m, best.key)
	k.keys.Add(-1)
	return true
}

// Len returns the number of keys held.
func (k *Keyed) Len() int { return int(k.keys.Load()) }
