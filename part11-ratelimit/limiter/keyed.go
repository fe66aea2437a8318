// Package limiter holds the in-process limiters: Keyed, one token bucket
// per key in a sharded map whose memory stays bounded, and Leaky, a leaky
// bucket that spaces calls evenly.
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
//     client is dropped only if every sampled one is as drained) and never
//     refuses a key, DenyNew refuses the new key with ErrFull, so no tracked
//     client ever gets a fresh quota it did not earn.
//
// Each bucket is the token bucket of golang.org/x/time/rate (tokens = min(
// burst, tokens + rate·Δt), one token per request) kept as one int64: the
// instant at which it will be full again (GCRA's theoretical arrival time,
// shifted by the burst). The shard's lock already serialises a key's checks,
// so a rate.Limiter per key would add its own mutex, two lock round trips
// per check (AllowN, then TokensAt for Remaining) and about 100 bytes per
// key for nothing; the decisions are the same, to the nanosecond rounding
// of the refill interval (TestKeyedMatchesXTimeRate).
//
// A shard is a plain mutex, an open-addressed index from the key's 64-bit
// hash to a slot, and a slice of slots (the key and its bucket): a check of
// a known key is one hash (which also picks the shard), one probe, one
// string comparison, one uncontended lock, no division (unless the bucket
// is 13 days or more short of full, see divmod) and no allocation;
// Allow reads the clock once, the monotonic clock only.
package limiter

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// ErrFull is returned, with DenyNew, for a key the table has no room for.
// The caller's fail-open or fail-closed policy decides what happens to it.
var ErrFull = errors.New("limiter: key table full")

// Full chooses what a full table does with a new key.
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

// An insert drops the refilled entries among sampleOnInsert of its shard;
// a full table samples sampleWhenFull entries across shards.
const (
	sampleOnInsert = 2
	sampleWhenFull = 8
)

// Keyed is one token bucket per key. It is safe for concurrent use.
type Keyed struct {
	shards   []shard
	mask     uint64
	seed     maphash.Seed
	epoch    time.Time // the origin of the buckets' clock; carries a monotonic reading
	policy   quota.Policy
	interval int64   // ns per token, rounded up: never faster than the policy
	perToken float64 // 1 / interval
	slack    int64   // (burst − 1) × interval: how far ahead of now a bucket may be full and still admit
	burst    int     // the bucket's size in tokens
	limit    int     // Decision.Limit
	maxKeys  int64
	whenFull Full

	// keys is written on every insert and delete; the padding keeps it off
	// the cache line of the read-only fields every check reads.
	_    [64]byte
	keys atomic.Int64 // slots held across all shards, entries and inserts under way; at most maxKeys
}

// shard holds keys → slot → the instant the key's bucket is full again, in
// ns since epoch. The map is keyed by the key's 64-bit maphash, the hash
// that already chose the shard, so a check hashes its key once (a string-
// keyed map would hash it again) and compares it with the slot's copy; a
// key whose hash another key holds already goes to spill, so a collision
// costs a second lookup, never a shared bucket. Slots, not map values, so a
// check updates its bucket after one lookup; freed slots are reused.
type shard struct {
	mu    sync.Mutex
	index index             // key's hash → slot
	spill map[string]uint32 // keys whose hash m had for another key; nil until then
	slots []slot
	free  []uint32
	_     [128 - 96]byte // 96 bytes of fields on 64-bit platforms (TestShardIsTwoCacheLines); one shard header per two cache lines: neighbours' locks never share one (nor an adjacent-line prefetch pair)
}

type slot struct {
	key    string
	fullAt int64
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
	p := cfg.Policy
	interval := (int64(p.Window) + int64(p.Limit) - 1) / int64(p.Limit)
	burst := int64(p.BurstSize())
	if float64(burst)*float64(interval) > 1<<62 {
		return nil, fmt.Errorf("limiter: a burst of %d takes longer to refill than 146 years (%v)", burst, p)
	}
	k := &Keyed{
		shards:   make([]shard, n),
		mask:     uint64(n - 1),
		seed:     maphash.MakeSeed(),
		epoch:    time.Now(),
		policy:   p,
		interval: interval,
		perToken: 1 / float64(interval),
		slack:    (burst - 1) * interval,
		burst:    int(burst),
		limit:    max(p.Limit, int(burst)),
		maxKeys:  int64(cfg.MaxKeys),
		whenFull: cfg.WhenFull,
	}
	for i := range k.shards {
		k.shards[i].index = newIndex()
	}
	return k, nil
}

// Policy implements quota.Limiter.
func (k *Keyed) Policy() quota.Policy { return k.policy }

// Allow implements quota.Limiter on the monotonic clock. The only error is
// ErrFull (with DenyNew).
func (k *Keyed) Allow(_ context.Context, key string) (d quota.Decision, err error) {
	now := time.Since(k.epoch) // one monotonic clock read, no wall clock
	ok, debt, err := k.spend(maphash.String(k.seed, key), key, int64(now))
	if err != nil {
		return k.refuse(k.epoch.Add(now)), err
	}
	// The Decision is too large to return in registers: it is written in
	// place, in Allow's result, not built in a callee's and copied up.
	k.decide(&d, ok, debt, k.epoch.Add(now))
	return d, nil
}

// AllowAt checks key at time now, like rate.Limiter.AllowN: replaying a
// recorded sequence of requests gives the same decisions every time. Use
// one clock per limiter: Allow's, or instants of the caller's choosing.
// Instants more than 36 years from the limiter's creation count as 36
// years away.
func (k *Keyed) AllowAt(key string, now time.Time) (quota.Decision, error) {
	return k.allowAt(maphash.String(k.seed, key), key, now)
}

// horizon bounds AllowAt's instants, in ns from the epoch (36 years): a
// bucket is full at most burst × interval ≤ 2^62 ns after the instant it
// was last admitted at, so with instants in ±2^60 every fullAt and every
// fullAt − now fits in an int64. now.Sub saturates at ±292 years, where a
// fullAt past the end wraps negative and the bucket reads as full (a zero
// Time followed by a real one was refused for centuries; a saturated
// instant admitted every check). Allow's monotonic clock stays far inside.
const horizon = 1 << 60

// allowAt is AllowAt for key, whose maphash is h.
func (k *Keyed) allowAt(h uint64, key string, now time.Time) (quota.Decision, error) {
	ok, debt, err := k.spend(h, key, min(max(int64(now.Sub(k.epoch)), -horizon), horizon))
	if err != nil {
		return k.refuse(now), err
	}
	var d quota.Decision
	k.decide(&d, ok, debt, now)
	return d, nil
}

// refuse is the Decision that goes with ErrFull.
func (k *Keyed) refuse(at time.Time) quota.Decision {
	return quota.Decision{Limit: k.limit, RetryAfter: k.policy.Interval(), Reset: k.policy.Interval(), At: at}
}

// spend checks and, if admitted, counts one request for key, whose maphash
// is h, at now (ns since epoch). It reports whether the request is admitted
// and how far (in ns) the key's bucket is then from full.
func (k *Keyed) spend(h uint64, key string, now int64) (ok bool, debt int64, err error) {
	s := &k.shards[h&k.mask]
	s.mu.Lock()
	i, ok := s.index.get(h)
	if !ok || s.slots[i].key != key {
		if i, ok = s.spilled(key); !ok {
			if i, err = k.insert(s, h, key, now); err != nil {
				s.mu.Unlock()
				return false, 0, err
			}
		}
	}
	b := &s.slots[i]
	fullAt := b.fullAt
	ok = fullAt-now <= k.slack // at least one token
	if ok {
		fullAt = max(fullAt, now) + k.interval
		b.fullAt = fullAt
	}
	s.mu.Unlock()
	return ok, max(0, fullAt-now), nil
}

// spilled looks key up among s's keys whose hash collided with another's.
func (s *shard) spilled(key string) (uint32, bool) {
	if len(s.spill) == 0 {
		return 0, false
	}
	i, ok := s.spill[key]
	return i, ok
}

// decide writes into d, a zero Decision, the Decision for a bucket that is debt ns short of full:
// it holds burst − debt/interval tokens.
func (k *Keyed) decide(d *quota.Decision, ok bool, debt int64, at time.Time) {
	// whole tokens owed, and the part of one
	owed, part := divmod(debt, k.interval, k.perToken)
	// Field by field: a composite literal would be built on the stack and
	// copied.
	d.Allowed = ok
	d.Limit = k.limit
	d.Remaining = k.burst - int(owed)
	d.Reset = time.Duration(k.interval)
	d.At = at
	// Using every whole token now leaves a fraction; the next whole token
	// arrives when the part owed refills (a whole interval if none is).
	if part > 0 {
		d.Remaining--
		d.Reset = time.Duration(part)
	}
	if !ok {
		d.RetryAfter = time.Duration(debt - k.slack) // until one token is back
	}
}

// divmod returns debt / interval and debt % interval for debt ≥ 0 and
// interval ≥ 1, given perToken = 1/interval, without a 64-bit division
// (tens of cycles on many x86 cores; the README's profile shows what it
// cost a check): below 2^50 the float64 product is within a quarter of the
// quotient, so its truncation is off by at most one, and one step corrects
// it. Larger debts (13 days of refill) divide.
func divmod(debt, interval int64, perToken float64) (q, r int64) {
	if debt >= 1<<50 {
		return debt / interval, debt % interval
	}
	q = int64(float64(debt) * perToken)
	r = debt - q*interval
	if r < 0 {
		q, r = q-1, r+interval
	} else if r >= interval {
		q, r = q+1, r-interval
	}
	return q, r
}

// insert gives key a slot in s, whose lock the caller holds and which does
// not have key. A new bucket is full. insert may release s's lock while it
// makes room elsewhere; it then looks for key again (another check of the
// same new key may have inserted it meanwhile).
func (k *Keyed) insert(s *shard, h uint64, key string, now int64) (uint32, error) {
	k.keys.Add(-int64(k.dropRefilled(s, now, sampleOnInsert)))
	if k.keys.Add(1) > k.maxKeys { // full: reclaim a slot from the table
		k.keys.Add(-1)
		s.mu.Unlock()
		ok := k.reclaim(now)
		s.mu.Lock()
		if !ok {
			return 0, ErrFull
		}
		if i, found := s.find(h, key); found { // inserted meanwhile: give the slot back
			k.keys.Add(-1)
			return i, nil
		}
	}
	e := slot{key: strings.Clone(key), fullAt: now} // the caller's key may share a larger buffer
	var i uint32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
		s.slots[i] = e
	} else {
		i = uint32(len(s.slots))
		s.slots = append(s.slots, e)
	}
	if _, taken := s.index.get(h); !taken {
		s.index.put(h, i)
		return i, nil
	}
	if s.spill == nil {
		s.spill = make(map[string]uint32)
	}
	s.spill[e.key] = i
	return i, nil
}

// find returns key's slot in s, whose maphash is h.
func (s *shard) find(h uint64, key string) (uint32, bool) {
	if i, ok := s.index.get(h); ok && s.slots[i].key == key {
		return i, true
	}
	return s.spilled(key)
}

// entries yields up to n of s's entries as hash (0 for spilled ones) and
// slot, walking the index from a random position, then the spill map. The
// caller holds s's lock and may remove the entry it was given (an entry
// that removal shifts back behind the walk is skipped; one seen at the
// walk's start may be seen again at its end, see index.del: harmless to
// dropRefilled, which removed it the first time if it had refilled).
func (s *shard) entries(n int) iter.Seq2[uint64, uint32] {
	return func(yield func(uint64, uint32) bool) {
		e := s.index.e
		start := rand.IntN(len(e))
		for j := range e {
			x := e[(start+j)&(len(e)-1)]
			if x.i == 0 {
				continue
			}
			if n--; n < 0 || !yield(x.h, x.i-1) {
				return
			}
		}
		for _, i := range s.spill {
			if n--; n < 0 || !yield(0, i) {
				return
			}
		}
	}
}

// dropRefilled deletes the refilled entries among n of s's (entries: from
// a random position on), whose lock the caller holds.
// It reports how many it dropped; the caller settles the count of keys.
func (k *Keyed) dropRefilled(s *shard, now int64, n int) int {
	dropped := 0
	for h, i := range s.entries(n) {
		if s.slots[i].fullAt <= now {
			s.remove(h, i)
			dropped++
		}
	}
	if dropped > 0 {
		s.index.shrink()
	}
	return dropped
}

// remove deletes the entry in slot i, found under hash h (0 if spilled).
func (s *shard) remove(h uint64, i uint32) {
	if !s.index.del(h, i) {
		delete(s.spill, s.slots[i].key)
	}
	s.slots[i] = slot{}
	s.free = append(s.free, i)
}

// reclaim frees a slot of a full table for the caller, holding no other
// lock: it locks one shard at a time, from a random one on, until it has
// seen sampleWhenFull entries or every shard. If any sampled entry has
// refilled, those are dropped (nothing lost). Otherwise, with DenyNew, it
// reports false; with EvictFullest it evicts the sampled entry that will be
// full soonest, or, if checks changed that shard meanwhile, the fullest of
// what that shard holds now, so it always succeeds. The freed slot is
// counted for the caller, who must fill it or give it back.
func (k *Keyed) reclaim(now int64) bool {
	for {
		var best *shard
		bestAt, seen := int64(0), 0
		start := rand.Uint64()
		for j := uint64(0); j <= k.mask && seen < sampleWhenFull; j++ {
			o := &k.shards[(start+j)&k.mask]
			o.mu.Lock()
			if n := k.dropRefilled(o, now, sampleWhenFull-seen); n > 0 {
				o.mu.Unlock()
				k.keys.Add(-int64(n - 1)) // one slot goes to the caller, the rest are free
				return true
			}
			for _, i := range o.entries(sampleWhenFull - seen) {
				seen++
				if best == nil || o.slots[i].fullAt < bestAt {
					best, bestAt = o, o.slots[i].fullAt
				}
			}
			o.mu.Unlock()
		}
		switch {
		case k.whenFull == DenyNew:
			return k.take()
		case best == nil: // every slot is an insert under way: one will land
			if k.take() {
				return true
			}
			runtime.Gosched()
			continue
		}
		best.mu.Lock()
		if best.evictFullest() { // its slot goes to the caller: the count does not change
			best.mu.Unlock()
			return true
		}
		best.mu.Unlock()
	}
}

// evictFullest removes the entry of s, whose lock the caller holds, that
// will be full soonest among sampleWhenFull of them; false if s is empty.
func (s *shard) evictFullest() bool {
	var victimH uint64
	var victim uint32
	n := 0
	for h, i := range s.entries(sampleWhenFull) {
		if n == 0 || s.slots[i].fullAt < s.slots[victim].fullAt {
			victimH, victim = h, i
		}
		n++
	}
	if n == 0 {
		return false
	}
	s.remove(victimH, victim)
	s.index.shrink()
	return true
}

// take counts one more slot if the table has room (another check may have
// freed one); it reports whether it did.
func (k *Keyed) take() bool {
	if k.keys.Add(1) <= k.maxKeys {
		return true
	}
	k.keys.Add(-1)
	return false
}

// Len returns the number of keys held, locking each shard in turn.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += s.index.n + len(s.spill)
		s.mu.Unlock()
	}
	return n
}
