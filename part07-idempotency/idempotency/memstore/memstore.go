// Package memstore is an in-process idempotency.Store: one map behind a mutex.
// It is the stand-in when neither Redis nor PostgreSQL is reachable, and the
// reference the contract suite is checked against. Records live only as long
// as the process and are not shared between processes, so it protects one
// instance, never a fleet.
package memstore

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
)

var _ idempotency.Store = (*Store)(nil)

// Store is an in-memory idempotency.Store, safe for concurrent use. Its zero
// value is not usable; call New.
//
// Expired records are deleted as writes go by, in expiry order (a min-heap),
// so memory stays bounded by the live records at O(log n) per write. The
// article's TTL of 24 h makes that a day of keys: a full scan every so many
// writes would cost a whole map walk each time.
type Store struct {
	mu    sync.Mutex
	m     map[idempotency.Key]entry
	queue expiries
}

type entry struct {
	rec     idempotency.Record
	expires time.Time
}

// expiries is a min-heap of (expiry, key). A key written again leaves its old
// item behind; popping it finds a later expiry in the map and deletes nothing.
type expiries []expiry

type expiry struct {
	at  time.Time
	key idempotency.Key
}

func (q expiries) Len() int           { return len(q) }
func (q expiries) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q expiries) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiries) Push(x any)        { *q = append(*q, x.(expiry)) }
func (q *expiries) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// New returns an empty Store.
func New() *Store { return &Store{m: map[idempotency.Key]entry{}} }

// Len is the number of records held, expired ones not yet deleted included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// live returns the record under key if it has not expired. Callers hold mu.
func (s *Store) live(key idempotency.Key, now time.Time) (entry, bool) {
	e, ok := s.m[key]
	return e, ok && now.Before(e.expires)
}

// put stores rec under key until now+ttl and deletes what has expired.
// Callers hold mu.
func (s *Store) put(key idempotency.Key, rec idempotency.Record, now time.Time, ttl time.Duration) {
	s.m[key] = entry{rec: rec.Clone(), expires: now.Add(ttl)}
	heap.Push(&s.queue, expiry{at: now.Add(ttl), key: key})
	for len(s.queue) > 0 && !now.Before(s.queue[0].at) {
		x := heap.Pop(&s.queue).(expiry)
		if e, ok := s.m[x.key]; ok && !now.Before(e.expires) {
			delete(s.m, x.key)
		}
	}
}

// Claim implements idempotency.Store.
func (s *Store) Claim(ctx context.Context, key idempotency.Key, claim idempotency.Record, ttl time.Duration) (*idempotency.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.live(key, now); ok {
		rec := e.rec.Clone()
		return &rec, nil
	}
	s.put(key, claim, now, ttl)
	return nil, nil
}

// Renew implements idempotency.Store.
func (s *Store) Renew(ctx context.Context, key idempotency.Key, claim idempotency.Record, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key, now)
	switch {
	case ok && e.rec.Token != claim.Token:
		return idempotency.ErrClaimLost
	case ok && e.rec.State == idempotency.Completed:
		return nil
	}
	s.put(key, claim, now, ttl)
	return nil
}

// Complete implements idempotency.Store.
func (s *Store) Complete(ctx context.Context, key idempotency.Key, rec idempotency.Record, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.live(key, now); ok && e.rec.Token != rec.Token {
		return idempotency.ErrClaimLost
	}
	s.put(key, rec, now, ttl)
	return nil
}

// Release implements idempotency.Store.
func (s *Store) Release(ctx context.Context, key idempotency.Key, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.live(key, time.Now()); ok && e.rec.Token == token && e.rec.State == idempotency.InProgress {
		delete(s.m, key)
	}
	return nil
}
