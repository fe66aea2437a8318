package shard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// User is the row every shard holds: users(id, name, score).
type User struct {
	ID    int64
	Name  string
	Score int64
}

// Cursor is where a page of Top ended: the next page starts after it.
type Cursor struct{ Score, ID int64 }

// Before reports whether a comes before b in Top's order: score descending,
// then id descending, a total order (ids are unique), so pages never overlap
// or skip on ties.
func Before(a, b User) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.ID > b.ID)
}

// after reports whether u comes after c in Top's order.
func (c Cursor) after(u User) bool { return Before(User{ID: c.ID, Score: c.Score}, u) }

// ErrNotFound is returned by Get for an id the store does not hold.
var ErrNotFound = errors.New("shard: user not found")

// Store is one shard's users: a PostgreSQL database (package pgshard) or memory.
type Store interface {
	// Put inserts or replaces each user (by ID), in one round trip.
	Put(ctx context.Context, us ...User) error
	// Get returns the user with id, or ErrNotFound.
	Get(ctx context.Context, id int64) (User, error)
	// Delete removes the users with ids; a missing one is not an error.
	Delete(ctx context.Context, ids ...int64) error
	// Top returns up to limit users in Before order, starting after the cursor
	// (from the first when after is nil).
	Top(ctx context.Context, after *Cursor, limit int) ([]User, error)
	// Scan returns up to limit users with id > afterID in id order.
	Scan(ctx context.Context, afterID int64, limit int) ([]User, error)
	// Count returns how many users the store holds.
	Count(ctx context.Context) (int64, error)
	// Name identifies the shard in errors and output ("part04_shard_1").
	Name() string
}

// Memory is a Store in this process: the demo's stand-in and the tests' oracle.
type Memory struct {
	name string
	mu   sync.Mutex
	m    map[int64]User
}

// NewMemory returns an empty store called name.
func NewMemory(name string) *Memory { return &Memory{name: name, m: map[int64]User{}} }

// Put implements Store.
func (s *Memory) Put(_ context.Context, us ...User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range us {
		s.m[u.ID] = u
	}
	return nil
}

// Get implements Store.
func (s *Memory) Get(_ context.Context, id int64) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.m[id]
	if !ok {
		return User{}, ErrNotFound
	}
	return u, nil
}

// Delete implements Store.
func (s *Memory) Delete(_ context.Context, ids ...int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.m, id)
	}
	return nil
}

// Top implements Store by sorting every row: fine for a stand-in.
func (s *Memory) Top(_ context.Context, after *Cursor, limit int) ([]User, error) {
	s.mu.Lock()
	all := slices.Collect(maps.Values(s.m))
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b User) int {
		if Before(a, b) {
			return -1
		}
		return 1
	})
	if after != nil {
		i, _ := slices.BinarySearchFunc(all, *after, func(u User, c Cursor) int {
			if c.after(u) {
				return 1
			}
			return -1
		})
		all = all[i:]
	}
	return slices.Clone(all[:min(limit, len(all))]), nil
}

// Scan implements Store.
func (s *Memory) Scan(_ context.Context, afterID int64, limit int) ([]User, error) {
	s.mu.Lock()
	var out []User
	for _, u := range s.m {
		if u.ID > afterID {
			out = append(out, u)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b User) int { return cmp.Compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

// Count implements Store.
func (s *Memory) Count(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.m)), nil
}

// Name implements Store.
func (s *Memory) Name() string { return s.name }

// ShardError is an operation on one shard that failed: it names the shard.
type ShardError struct {
	Shard int
	Name  string // the store's Name()
	Op    string // "put user 42", "top 10"
	Err   error
}

func (e *ShardError) Error() string {
	return fmt.Sprintf("shard %d (%s): %s: %v", e.Shard, e.Name, e.Op, e.Err)
}

// Unwrap returns the store's error.
func (e *ShardError) Unwrap() error { return e.Err }
