// Package contract is the behaviour every port.UserRepository must have,
// written once as tests and run against each adapter:
//
//	func TestContract(t *testing.T) {
//		contract.Run(t, func(*testing.T) port.UserRepository { return memory.New() })
//	}
//
// An adapter that passes can replace another without the service noticing,
// which is the promise of ports and adapters. The subtests run in parallel
// and use IDs unique to each run, so a persistent store needs no cleanup and
// several packages may run the suite against one database at the same time.
package contract

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
)

// Run runs the contract suite. newRepo is called once per subtest; it may
// return a fresh repository or a shared one (the suite never assumes the
// store is empty).
func Run(t *testing.T, newRepo func(t *testing.T) port.UserRepository) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			tc.run(ctx, t, newRepo(t))
		})
	}
}

// UniqueID returns an ID valid under domain.ValidateID that no other test or
// run will use: a slug of the test name plus 48 random bits.
func UniqueID(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, t.Name())
	suffix := "-" + hex.EncodeToString(b[:])
	if room := domain.MaxIDLen - len(suffix); len(slug) > room {
		slug = slug[len(slug)-room:] // keep the end: the subtest's own name
	}
	return slug + suffix
}

// timeout bounds each subtest, so a hung database fails the test with a
// message instead of stalling the whole run until go test's own deadline.
const timeout = 30 * time.Second

type testCase struct {
	name string
	run  func(ctx context.Context, t *testing.T, repo port.UserRepository)
}

var cases = []testCase{
	{"FindByID/unknown ID is ErrNotFound", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		u, err := repo.FindByID(ctx, UniqueID(t))
		if !errors.Is(err, domain.ErrNotFound) || u != nil {
			t.Fatalf("FindByID(unknown) = %v, %v; want nil, ErrNotFound", u, err)
		}
	}},
	{"FindByID/malformed ID is ErrInvalid", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		for _, id := range []string{"", "has space", "slash/in/id", strings.Repeat("x", domain.MaxIDLen+1)} {
			if _, err := repo.FindByID(ctx, id); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("FindByID(%q): err = %v, want ErrInvalid", id, err)
			}
		}
	}},
	{"Save then FindByID round-trips every field", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		want := domain.User{ID: UniqueID(t), Name: "Zoë 山田 O'Brien", Email: "zoe+test@example.com"}
		mustSave(ctx, t, repo, want)
		if got := mustFind(ctx, t, repo, want.ID); got != want {
			t.Fatalf("FindByID = %+v, want %+v", got, want)
		}
	}},
	{"Save twice upserts", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		id := UniqueID(t)
		mustSave(ctx, t, repo, domain.User{ID: id, Name: "First", Email: "first@example.com"})
		second := domain.User{ID: id, Name: "Second", Email: "second@example.com"}
		mustSave(ctx, t, repo, second)
		if got := mustFind(ctx, t, repo, id); got != second {
			t.Fatalf("after two saves FindByID = %+v, want the second %+v", got, second)
		}
	}},
	{"Save keeps users apart", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		a := domain.User{ID: UniqueID(t), Name: "A", Email: "a@example.com"}
		b := domain.User{ID: UniqueID(t), Name: "B", Email: "b@example.com"}
		mustSave(ctx, t, repo, a)
		mustSave(ctx, t, repo, b)
		if got := mustFind(ctx, t, repo, a.ID); got != a {
			t.Errorf("user a = %+v after saving b, want %+v", got, a)
		}
	}},
	{"Save rejects invalid users and stores nothing", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		id := UniqueID(t)
		for _, u := range []*domain.User{
			nil,
			{ID: "", Name: "No ID", Email: "noid@example.com"},
			{ID: id, Name: "Bad Email", Email: "not-an-email"},
			{ID: id, Name: "  ", Email: "blank@example.com"},
			{ID: id, Name: "Display", Email: "Ada <ada@example.com>"},
			// PostgreSQL text cannot hold NUL; an adapter must not turn it into a 500.
			{ID: id, Name: "Ada\x00Lovelace", Email: "nul@example.com"},
		} {
			err := repo.Save(ctx, u)
			var ve *domain.ValidationError
			if !errors.Is(err, domain.ErrInvalid) || !errors.As(err, &ve) {
				t.Errorf("Save(%+v): err = %v, want a *domain.ValidationError", u, err)
			}
		}
		if _, err := repo.FindByID(ctx, id); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("after rejected saves FindByID(%q): err = %v, want ErrNotFound", id, err)
		}
	}},
	{"stored users do not alias caller memory", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		want := domain.User{ID: UniqueID(t), Name: "Original", Email: "orig@example.com"}
		in := want
		if err := repo.Save(ctx, &in); err != nil {
			t.Fatal(err)
		}
		in.Name = "changed after Save"
		out, err := repo.FindByID(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		out.Name = "changed after FindByID"
		if got := mustFind(ctx, t, repo, want.ID); got != want {
			t.Fatalf("stored user = %+v, want %+v untouched by callers", got, want)
		}
	}},
	{"concurrent saves to one ID leave one whole user", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		id := UniqueID(t)
		const writers = 8
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() {
				errs <- repo.Save(ctx, &domain.User{ID: id, Name: fmt.Sprintf("writer-%d", i), Email: fmt.Sprintf("w%d@example.com", i)})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Save: %v", err)
			}
		}
		got := mustFind(ctx, t, repo, id)
		var i int
		if _, err := fmt.Sscanf(got.Name, "writer-%d", &i); err != nil || got.Email != fmt.Sprintf("w%d@example.com", i) {
			t.Fatalf("stored %+v mixes fields of different writers", got)
		}
	}},
	{"cancelled context fails and stores nothing", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		dead, cancel := context.WithCancel(ctx)
		cancel()
		u := domain.User{ID: UniqueID(t), Name: "Late", Email: "late@example.com"}
		if err := repo.Save(dead, &u); !errors.Is(err, context.Canceled) {
			t.Errorf("Save with a cancelled context: err = %v, want context.Canceled", err)
		}
		if _, err := repo.FindByID(dead, u.ID); !errors.Is(err, context.Canceled) {
			t.Errorf("FindByID with a cancelled context: err = %v, want context.Canceled", err)
		}
		if _, err := repo.FindByID(ctx, u.ID); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("a Save with a cancelled context stored the user (FindByID err = %v)", err)
		}
	}},
}

func mustSave(ctx context.Context, t *testing.T, repo port.UserRepository, u domain.User) {
	t.Helper()
	if err := repo.Save(ctx, &u); err != nil {
		t.Fatalf("Save(%+v): %v", u, err)
	}
}

func mustFind(ctx context.Context, t *testing.T, repo port.UserRepository, id string) domain.User {
	t.Helper()
	u, err := repo.FindByID(ctx, id)
	if err != nil {
		t.Fatalf("FindByID(%q): %v", id, err)
	}
	if u == nil {
		t.Fatalf("FindByID(%q) returned nil without an error", id)
	}
	return *u
}
