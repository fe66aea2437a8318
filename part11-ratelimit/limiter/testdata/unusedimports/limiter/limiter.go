// Package limiter has the import block of the article's ShardedLimiter:
// time is imported, and nothing in the file uses it.
package limiter

import (
	"hash/fnv"
	"sync"
	"time"
)

// Shard is here so that fnv and sync are used.
type Shard struct {
	mu sync.RWMutex
	n  uint32
}

// Hash uses fnv.
func (s *Shard) Hash(key string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return h.Sum32()
}
