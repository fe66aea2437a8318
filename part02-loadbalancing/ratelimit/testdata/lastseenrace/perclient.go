// Package lastseen has the locking of the article's getLimiter: the map is
// read under the read lock, and a client's lastSeen is written after the
// read lock is released, with no lock at all.
package lastseen

import (
	"sync"
	"time"
)

type state struct{ lastSeen time.Time }

// Limiter remembers when each client was last seen.
type Limiter struct {
	mu      sync.RWMutex
	clients map[string]*state
}

// New returns an empty Limiter.
func New() *Limiter { return &Limiter{clients: map[string]*state{}} }

// Seen records a request of key.
func (l *Limiter) Seen(key string) {
	l.mu.RLock()
	s, ok := l.clients[key]
	l.mu.RUnlock()
	if ok {
		s.lastSeen = time.Now() // the article's line: no lock held
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clients[key] = &state{lastSeen: time.Now()}
}
