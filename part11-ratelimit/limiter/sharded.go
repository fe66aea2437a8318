package limiter

import (
	"hash/fnv"
	"sync"

	"golang.org/x/time/rate"
)

// Sharded is the article's ShardedLimiter, kept as the baseline the chapter
// measures Keyed against (-mode memory, -mode contention, bench/part11): per
// shard (fnv32a of the key, modulo the shard count) a sync.RWMutex and a
// map holding one rate.Limiter per key, made on a key's first call under a
// double-checked lock. It has the article's faults on purpose: it never
// forgets a key, r and b count only on a key's first call, and each check
// takes the key's own rate.Limiter mutex, which the shards do not split
// (TestArticleShardedLimiterNeverForgets, TestArticleLaterRatesAreIgnored).
// Use Keyed.
type Sharded struct {
	shards []shardedShard
}

type shardedShard struct {
	mu       sync.RWMutex
	limiters map[string]*rate.Limiter
}

// NewSharded returns the article's limiter with n shards. With n = 0 its
// first Allow divides by zero, as the article's NewShardedLimiter(0) does.
func NewSharded(n int) *Sharded {
	s := &Sharded{shards: make([]shardedShard, n)}
	for i := range s.shards {
		s.shards[i].limiters = map[string]*rate.Limiter{}
	}
	return s
}

// Allow is the article's check: r and b make key's limiter on its first
// call and are ignored afterwards.
func (s *Sharded) Allow(key string, r rate.Limit, b int) bool {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	sh := &s.shards[h.Sum32()%uint32(len(s.shards))]
	sh.mu.RLock()
	lim, ok := sh.limiters[key]
	sh.mu.RUnlock()
	if !ok {
		sh.mu.Lock()
		if lim, ok = sh.limiters[key]; !ok {
			lim = rate.NewLimiter(r, b)
			sh.limiters[key] = lim
		}
		sh.mu.Unlock()
	}
	return lim.Allow()
}

// Len returns the number of keys held: every key ever seen.
func (s *Sharded) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.limiters)
		sh.mu.RUnlock()
	}
	return n
}
