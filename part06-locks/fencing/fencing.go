// Package fencing is the storage side of a fencing token: a store that applies
// a write only if its token is at least the highest token it has accepted for
// that resource, and refuses it with ErrStale otherwise.
//
// A lock alone cannot stop a holder that paused (GC, SIGSTOP, a swapped-out
// VM) past its TTL: when it wakes it still believes it holds the lock, while a
// second holder has taken it and written. The article recommends tokens
// ("use these as fencing tokens") but gives no code; here the check sits where
// it must, in the store, as one conditional statement, so no interleaving of
// the two holders can slip a stale write through.
//
// An equal token is accepted: it is the same holder writing again, since the
// lock package hands every holder its own token (etcd: the lock key's create
// revision; Redlock: a counter advanced on a majority). Memory is the
// in-process store; Postgres keeps the rows in PostgreSQL.
package fencing

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrStale is returned by Write when a higher token has already written to
// the resource: the writer's lock has passed to someone else.
var ErrStale = errors.New("fencing: stale token")

// StaleError says which token was refused and which one had written.
type StaleError struct {
	Resource      string
	Token, Latest int64
}

// Error names both tokens, so a log line says who won.
func (e *StaleError) Error() string {
	return fmt.Sprintf("fencing: token %d for %q is stale: token %d has written", e.Token, e.Resource, e.Latest)
}

// Is makes errors.Is(err, ErrStale) true.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// Record is a resource's current value and the token that wrote it.
type Record struct {
	Value string
	Token int64
}

// Store is a resource store that enforces fencing tokens.
type Store interface {
	// Write sets resource's value if token is at least the highest token that
	// has written to it, and returns a *StaleError (ErrStale) otherwise. The
	// first write to a resource creates it.
	Write(ctx context.Context, resource string, token int64, value string) error
	// Read returns the resource's record, and ok=false if it was never written.
	Read(ctx context.Context, resource string) (rec Record, ok bool, err error)
}

// Memory is a Store in process memory, safe for concurrent use.
type Memory struct {
	mu   sync.Mutex
	rows map[string]Record
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{rows: map[string]Record{}} }

// Write implements Store.
func (m *Memory) Write(_ context.Context, resource string, token int64, value string) error {
	if err := validToken(token); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.rows[resource]; ok && token < cur.Token {
		return &StaleError{Resource: resource, Token: token, Latest: cur.Token}
	}
	m.rows[resource] = Record{Value: value, Token: token}
	return nil
}

// Read implements Store.
func (m *Memory) Read(_ context.Context, resource string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[resource]
	return r, ok, nil
}

// validToken refuses tokens no lock hands out: both backends start at 1.
func validToken(token int64) error {
	if token < 1 {
		return fmt.Errorf("fencing: token %d is not a lock's token (they start at 1)", token)
	}
	return nil
}
