package shard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Table is where a Directory keeps its entries: memory here, PostgreSQL in
// package pgshard.
type Table interface {
	// Lookup returns key's shard, or ok false if key has no entry.
	Lookup(ctx context.Context, key int64) (shard int, ok bool, err error)
	// Assign gives key the shard unless it has one already, and returns the
	// shard key has afterwards: of two concurrent Assigns, both get the first's.
	Assign(ctx context.Context, key int64, shard int) (int, error)
	// Reassign moves up to n keys (the highest) from shard from to shard to and
	// returns how many it moved.
	Reassign(ctx context.Context, from, to, n int) (int, error)
	// LookupAll returns the entries of keys that have one, in one round trip.
	LookupAll(ctx context.Context, keys []int64) (map[int64]int, error)
	// AssignAll gives each keys[i] the shard shards[i] unless it has one.
	AssignAll(ctx context.Context, keys []int64, shards []int) error
	// Counts returns how many keys each shard has.
	Counts(ctx context.Context) (map[int]int64, error)
}

// Directory routes through a lookup table, as a Vitess lookup vindex does: a
// key's shard is whatever its entry says, so one key can be moved alone. A key
// with no entry is an error (NoShardError), never a guess: Place gives a new
// key its entry.
type Directory struct {
	table Table
	n     int
	place Router // where Place puts a new key
}

// NewDirectory returns a directory over n shards; Place puts new keys where
// Jump{n} would.
func NewDirectory(t Table, n int) *Directory {
	return &Directory{table: t, n: n, place: Jump{N: n}}
}

// WithShards returns a directory on the same table that spreads over n shards
// and places new keys over all n.
func (d *Directory) WithShards(n int) *Directory {
	return &Directory{table: d.table, n: n, place: Jump{N: n}}
}

// Table returns the directory's table.
func (d *Directory) Table() Table { return d.table }

// Route implements Router with one lookup.
func (d *Directory) Route(ctx context.Context, key int64) (int, error) {
	s, ok, err := d.table.Lookup(ctx, key)
	switch {
	case err != nil:
		return 0, fmt.Errorf("shard: directory lookup of key %d: %w", key, err)
	case !ok:
		return 0, &NoShardError{Key: key, Router: d.String()}
	case s < 0 || s >= d.n:
		return 0, fmt.Errorf("shard: directory entry for key %d names shard %d, outside 0..%d", key, s, d.n-1)
	}
	return s, nil
}

// RouteAll implements BatchRouter with one LookupAll.
func (d *Directory) RouteAll(ctx context.Context, keys []int64) ([]int, error) {
	m, err := d.table.LookupAll(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("shard: directory lookup of %d keys: %w", len(keys), err)
	}
	out := make([]int, len(keys))
	for i, k := range keys {
		s, ok := m[k]
		switch {
		case !ok:
			return nil, &NoShardError{Key: k, Router: d.String()}
		case s < 0 || s >= d.n:
			return nil, fmt.Errorf("shard: directory entry for key %d names shard %d, outside 0..%d", k, s, d.n-1)
		}
		out[i] = s
	}
	return out, nil
}

// PlaceAll gives every key without an entry the shard Place would.
func (d *Directory) PlaceAll(ctx context.Context, keys []int64) error {
	shards, err := RouteAll(ctx, d.place, keys)
	if err != nil {
		return err
	}
	if err := d.table.AssignAll(ctx, keys, shards); err != nil {
		return fmt.Errorf("shard: directory assign of %d keys: %w", len(keys), err)
	}
	return nil
}

// Place gives key an entry if it has none and returns its shard.
func (d *Directory) Place(ctx context.Context, key int64) (int, error) {
	s, _ := d.place.Route(ctx, key)
	got, err := d.table.Assign(ctx, key, s)
	if err != nil {
		return 0, fmt.Errorf("shard: directory assign of key %d: %w", key, err)
	}
	return got, nil
}

// Shards implements Router.
func (d *Directory) Shards() int { return d.n }

func (d *Directory) String() string { return fmt.Sprintf("directory, %d shards", d.n) }

// MemoryTable is a Table in this process.
type MemoryTable struct {
	mu sync.Mutex
	m  map[int64]int
}

// NewMemoryTable returns an empty table.
func NewMemoryTable() *MemoryTable { return &MemoryTable{m: map[int64]int{}} }

// Lookup implements Table.
func (t *MemoryTable) Lookup(_ context.Context, key int64) (int, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[key]
	return s, ok, nil
}

// Assign implements Table.
func (t *MemoryTable) Assign(_ context.Context, key int64, shard int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[key]; ok {
		return s, nil
	}
	t.m[key] = shard
	return shard, nil
}

// LookupAll implements Table.
func (t *MemoryTable) LookupAll(_ context.Context, keys []int64) (map[int64]int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int64]int, len(keys))
	for _, k := range keys {
		if s, ok := t.m[k]; ok {
			out[k] = s
		}
	}
	return out, nil
}

// AssignAll implements Table.
func (t *MemoryTable) AssignAll(_ context.Context, keys []int64, shards []int) error {
	if len(keys) != len(shards) {
		return fmt.Errorf("shard: %d keys but %d shards", len(keys), len(shards))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, k := range keys {
		if _, ok := t.m[k]; !ok {
			t.m[k] = shards[i]
		}
	}
	return nil
}

// Counts implements Table.
func (t *MemoryTable) Counts(context.Context) (map[int]int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int]int64{}
	for _, s := range t.m {
		out[s]++
	}
	return out, nil
}

// Reassign implements Table.
func (t *MemoryTable) Reassign(_ context.Context, from, to, n int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := slices.Sorted(maps.Keys(t.m))
	moved := 0
	for i := len(keys) - 1; i >= 0 && moved < n; i-- {
		if t.m[keys[i]] == from {
			t.m[keys[i]] = to
			moved++
		}
	}
	return moved, nil
}
