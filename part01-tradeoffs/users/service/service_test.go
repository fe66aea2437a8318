package service_test

import (
	"context"
	"errors"
	"testing"

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
	got, err := service.New(repo).Put(context.Background(), domain.User{ID: "u1", Name: " Ada ", Email: "Ada@EXAMPLE.com"})
	if err != nil {
		t.Fatal(err)
	}
	want := domain.User{ID: "u1", Name: "Ada", Email: "Ada@example.com"}
	if *got != want {
		t.Errorf("Put returned %+v, want %+v", *got, want)
	}
	if len(repo.saved) != 1 || repo.saved[0] != want {
		t.Errorf("repository saw %+v, want exactly [%+v]", repo.saved, want)
	}
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
		if _, err := svc.Put(context.Background(), u); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("Put(%+v): err = %v, want ErrInvalid", u, err)
		}
	}
	if len(repo.saved) != 0 {
		t.Errorf("invalid users reached the repository: %+v", repo.saved)
	}
}

func TestErrorsKeepTheirIdentityThroughTheService(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	svc := service.New(&fakeRepo{findErr: domain.ErrNotFound, saveErr: boom})
	if _, err := svc.Get(context.Background(), "nobody"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Get: err = %v, want ErrNotFound", err)
	}
	if _, err := svc.Get(context.Background(), "bad id"); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("Get with a malformed ID: err = %v, want ErrInvalid", err)
	}
	if _, err := svc.Put(context.Background(), domain.User{ID: "u1", Name: "Ada", Email: "ada@example.com"}); !errors.Is(err, boom) {
		t.Errorf("Put: err = %v, want the repository's error wrapped", err)
	}
}

func TestNewPanicsOnNilRepository(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("New(nil) did not panic")
		}
	}()
	service.New(nil)
}
