// Package service holds the use cases of the users example: the application
// rules that sit between a driver (HTTP, CLI, tests) and a port. It depends on
// domain and port only; it cannot tell PostgreSQL from a map.
package service

import (
	"context"
	"fmt"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
)

// UserService registers, updates and looks up users.
//
// The article wires it from package main as &domain.UserService{Repo: r},
// but the struct's field is the unexported repo: "unknown field Repo in
// struct literal". New is the constructor it needs, and the field stays
// unexported so nothing outside the use case can swap the repository.
type UserService struct {
	repo port.UserRepository
}

// New returns a UserService storing users in repo. It panics on a nil repo:
// that is a wiring mistake to catch at start-up, not a runtime condition.
func New(repo port.UserRepository) *UserService {
	if repo == nil {
		panic("service.New: nil UserRepository")
	}
	return &UserService{repo: repo}
}

// Get returns the user with the given ID. Errors match domain.ErrInvalid for a
// malformed ID and domain.ErrNotFound for an unknown one.
func (s *UserService) Get(ctx context.Context, id string) (*domain.User, error) {
	if err := domain.ValidateID(id); err != nil {
		return nil, err
	}
	u, err := s.repo.FindByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get user %q: %w", id, err)
	}
	return u, nil
}

// Put creates the user or replaces the one with the same ID, after
// normalizing and validating the input (errors match domain.ErrInvalid, and
// nothing is stored). It returns the user as stored.
func (s *UserService) Put(ctx context.Context, in domain.User) (*domain.User, error) {
	u := domain.Normalize(in)
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if err := s.repo.Save(ctx, &u); err != nil {
		return nil, fmt.Errorf("save user %q: %w", u.ID, err)
	}
	return &u, nil
}
