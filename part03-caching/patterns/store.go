package patterns

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Product is the cached row.
type Product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	// Version is assigned by the Store: 1 on insert, +1 on every update. The cache
	// uses it to refuse writes older than what it holds.
	Version int64 `json:"version"`
}

// ErrNotFound is returned for an absent product, by the Store and by every pattern
// (including when a cached "not found" tombstone answered).
var ErrNotFound = errors.New("patterns: product not found")

// Store is the system of record.
type Store interface {
	// Get returns the product or ErrNotFound.
	Get(ctx context.Context, id string) (Product, error)
	// Put inserts or updates p and returns it with its new Version.
	Put(ctx context.Context, p Product) (Product, error)
	// PutBatch upserts all of ps atomically (IDs are distinct).
	PutBatch(ctx context.Context, ps []Product) error
}

// MemStore is an in-memory Store for unit tests and for the demo when PostgreSQL is
// not running. Latency simulates a database round trip; Fail makes writes fail.
type MemStore struct {
	Latency time.Duration

	mu   sync.Mutex
	m    map[string]Product
	fail atomic.Bool
}

// NewMemStore returns an empty MemStore.
func NewMemStore(latency time.Duration) *MemStore {
	return &MemStore{Latency: latency, m: make(map[string]Product)}
}

// SetFailing makes writes fail (true) or succeed (false), to play a database outage.
func (s *MemStore) SetFailing(fail bool) { s.fail.Store(fail) }

var errStoreDown = errors.New("memstore: simulated outage")

func (s *MemStore) wait(ctx context.Context) error {
	if s.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(s.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, id string) (Product, error) {
	if err := s.wait(ctx); err != nil {
		return Product{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id]
	if !ok {
		return Product{}, ErrNotFound
	}
	return p, nil
}

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, p Product) (Product, error) {
	if err := s.wait(ctx); err != nil {
		return Product{}, err
	}
	if s.fail.Load() {
		return Product{}, errStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Version = s.m[p.ID].Version + 1
	s.m[p.ID] = p
	return p, nil
}

// PutBatch implements Store.
func (s *MemStore) PutBatch(ctx context.Context, ps []Product) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	if s.fail.Load() {
		return errStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		p.Version = s.m[p.ID].Version + 1
		s.m[p.ID] = p
	}
	return nil
}

// Count returns how many products have IDs starting with prefix.
func (s *MemStore) Count(_ context.Context, prefix string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.m {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n, nil
}

// IDs returns the stored IDs, sorted.
func (s *MemStore) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.m))
}

// CountingStore wraps a Store and counts the calls that reach it: the "backend
// calls" every caching pattern exists to reduce.
type CountingStore struct {
	Store
	Gets, Puts, Batches, BatchRows atomic.Int64
}

// Get implements Store.
func (c *CountingStore) Get(ctx context.Context, id string) (Product, error) {
	c.Gets.Add(1)
	return c.Store.Get(ctx, id)
}

// Put implements Store.
func (c *CountingStore) Put(ctx context.Context, p Product) (Product, error) {
	c.Puts.Add(1)
	return c.Store.Put(ctx, p)
}

// PutBatch implements Store.
func (c *CountingStore) PutBatch(ctx context.Context, ps []Product) error {
	c.Batches.Add(1)
	c.BatchRows.Add(int64(len(ps)))
	return c.Store.PutBatch(ctx, ps)
}
