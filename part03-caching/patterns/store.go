package patterns

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Store is the system of record.
type Store interface {
	// Get returns the product or ErrNotFound.
	Get(ctx context.Context, id string) (Product, error)
	// Put inserts or updates p and returns it with its new Version.
	Put(ctx context.Context, p Product) (Product, error)
	// PutBatch upserts all of ps (IDs distinct) atomically: all or none. An error
	// caused by what a row holds wraps ErrRejected.
	PutBatch(ctx context.Context, ps []Product) error
}

// MemStore is an in-memory Store for unit tests and for the demo when PostgreSQL is
// not running. It refuses what PGStore's schema refuses (Validate, and a negative
// price), so the two behave alike. Latency simulates a database round trip.
type MemStore struct {
	Latency time.Duration

	mu sync.Mutex
	m  map[string]Product
}

// NewMemStore returns an empty MemStore.
func NewMemStore(latency time.Duration) *MemStore {
	return &MemStore{Latency: latency, m: make(map[string]Product)}
}

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

// check is MemStore's stand-in for the schema's constraints.
func check(p Product) error {
	err := p.Validate()
	if err == nil && p.PriceCents < 0 {
		err = fmt.Errorf("price_cents %d violates CHECK (price_cents >= 0)", p.PriceCents)
	}
	if err != nil {
		return fmt.Errorf("memstore: %w: %w", ErrRejected, err)
	}
	return nil
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
	if err := check(p); err != nil {
		return Product{}, err
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
	for _, p := range ps {
		if err := check(p); err != nil {
			return err
		}
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

// Writes returns the round trips that wrote the database (a batch counts once).
func (c *CountingStore) Writes() int64 { return c.Puts.Load() + c.Batches.Load() }
