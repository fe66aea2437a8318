package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/service"
)

// fakeRepo records calls. The article's mock implemented FindByID only, so it
// did not satisfy UserRepository; this assertion is what catches that at
// compile time instead of at the first use.
var _ port.UserRepository = (*fakeRepo)(nil)

type fakeRepo struct {
	saved   []domain.User
	found   *domain.User
	findErr error
	saveErr error
}

func (f *fakeRepo) FindByID(_ context.Context, _ string) (*domain.User, error) {
	return f.found, f.findErr
}

func (f *fakeRepo) Save(_ context.Context, u *domain.User) error {
	if f.saveErr != nil {
		return f.saveErr
	}
	f.saved = append(f.saved, *u)
	return nil
}

func TestPutNormalizesThenSaves(t *testing.T) {
	t.Parallel()
	repo := &fakeRepo{}
	got, err := service.New(repo).Put(t.Context(), domain.User{ID: "u1", Name: " Ada ", Email: "Ada@EXAMPLE.com"})
	require.NoError(t, err)
	want := domain.User{ID: "u1", Name: "Ada", Email: "Ada@example.com"}
	assert.Equal(t, want, *got)
	assert.Equal(t, []domain.User{want}, repo.saved)
}

func TestPutRejectsInvalidInputBeforeTheRepository(t *testing.T) {
	t.Parallel()
	repo := &fakeRepo{}
	svc := service.New(repo)
	for _, u := range []domain.User{
		{ID: "", Name: "Ada", Email: "ada@example.com"},
		{ID: "u1", Name: "Ada", Email: "not-an-email"},
		{ID: "u1", Name: "", Email: "ada@example.com"},
	} {
		_, err := svc.Put(t.Context(), u)
		assert.ErrorIs(t, err, domain.ErrInvalid, "Put(%+v)", u)
	}
	assert.Empty(t, repo.saved, "invalid users reached the repository")
}

func TestErrorsKeepTheirIdentityThroughTheService(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	svc := service.New(&fakeRepo{findErr: domain.ErrNotFound, saveErr: boom})
	_, err := svc.Get(t.Context(), "nobody")
	assert.ErrorIs(t, err, domain.ErrNotFound)
	_, err = svc.Get(t.Context(), "bad id")
	assert.ErrorIs(t, err, domain.ErrInvalid, "malformed ID")
	_, err = svc.Put(t.Context(), domain.User{ID: "u1", Name: "Ada", Email: "ada@example.com"})
	assert.ErrorIs(t, err, boom, "the repository's error, wrapped")

	down := service.New(&fakeRepo{findErr: domain.ErrUnavailable})
	_, err = down.Get(t.Context(), "u1")
	assert.ErrorIs(t, err, domain.ErrUnavailable, "an outage stays an outage for the driver to map")
}

func TestNewPanicsOnNilRepository(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { service.New(nil) })
}
