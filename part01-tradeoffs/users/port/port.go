// Package port declares what the use cases need from the outside world, in the
// domain's terms. Adapters (memory, postgres) implement it; the service depends
// only on it. This is the interface the article calls UserRepository.
package port

import (
	"context"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
)

// UserRepository stores users. Every implementation must pass the shared
// contract suite (package contract), which pins down the behaviour this
// comment can only describe:
//
//   - FindByID returns an error matching domain.ErrNotFound for an unknown ID
//     and one matching domain.ErrInvalid for an ID that fails domain.ValidateID.
//   - Save validates the user (domain.ErrInvalid, nothing stored) and then
//     inserts or replaces it: saving the same ID twice keeps the second.
//   - Neither method keeps or hands out a pointer into its storage: changing a
//     user after Save, or after FindByID returned it, changes nothing stored.
//   - Both honour ctx: a cancelled context fails with an error matching
//     ctx.Err().
type UserRepository interface {
	FindByID(ctx context.Context, id string) (*domain.User, error)
	Save(ctx context.Context, u *domain.User) error
}
