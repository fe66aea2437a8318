// Package memory is the in-process adapter for port.UserRepository: a map
// behind a mutex. It is the stand-in the demo uses when PostgreSQL is not
// running, and it passes the same contract suite as the PostgreSQL adapter.
package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
)

var _ port.UserRepository = (*Repository)(nil)

// Repository stores users in memory. The zero value is not usable; call New.
type Repository struct {
	mu    sync.RWMutex
	users map[string]domain.User // values, not pointers: callers never share our copy
}

// New returns an empty Repository.
func New() *Repository {
	return &Repository{users: map[string]domain.User{}}
}

// FindByID returns a copy of the stored user.
func (r *Repository) FindByID(ctx context.Context, id string) (*domain.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := domain.ValidateID(id); err != nil {
		return nil, err
	}
	r.mu.RLock()
	u, ok := r.users[id]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("memory: id %q: %w", id, domain.ErrNotFound)
	}
	return &u, nil
}

// Save inserts or replaces a copy of u.
func (r *Repository) Save(ctx context.Context, u *domain.User) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := u.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	r.users[u.ID] = *u
	r.mu.Unlock()
	return nil
}
