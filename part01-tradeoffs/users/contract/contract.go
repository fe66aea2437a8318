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
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	_, err := rand.Read(b[:])
	require.NoError(t, err)
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
		assert.ErrorIs(t, err, domain.ErrNotFound)
		assert.Nil(t, u)
	}},
	{"FindByID/malformed ID is ErrInvalid", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		for _, id := range []string{"", "has space", "slash/in/id", strings.Repeat("x", domain.MaxIDLen+1)} {
			_, err := repo.FindByID(ctx, id)
			assert.ErrorIs(t, err, domain.ErrInvalid, "FindByID(%q)", id)
		}
	}},
	{"Save then FindByID round-trips every field", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		want := domain.User{ID: UniqueID(t), Name: "Zoë 山田 O'Brien", Email: "zoe+test@example.com"}
		mustSave(ctx, t, repo, want)
		assert.Equal(t, want, mustFind(ctx, t, repo, want.ID))
	}},
	{"Save stores fields at their length limits", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		local, host := strings.Repeat("l", domain.MaxEmailLocalLen), strings.Repeat("d", 63)
		want := domain.User{ID: UniqueID(t), Name: strings.Repeat("é", domain.MaxNameLen),
			Email: local + "@" + host + "." + host + "." + strings.Repeat("d", 57) + ".com"}
		require.Len(t, want.Email, domain.MaxEmailLen)
		mustSave(ctx, t, repo, want)
		assert.Equal(t, want, mustFind(ctx, t, repo, want.ID))
	}},
	{"Save twice upserts", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		id := UniqueID(t)
		mustSave(ctx, t, repo, domain.User{ID: id, Name: "First", Email: "first@example.com"})
		second := domain.User{ID: id, Name: "Second", Email: "second@example.com"}
		mustSave(ctx, t, repo, second)
		assert.Equal(t, second, mustFind(ctx, t, repo, id), "the second save wins")
	}},
	{"Save keeps users apart", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		a := domain.User{ID: UniqueID(t), Name: "A", Email: "a@example.com"}
		b := domain.User{ID: UniqueID(t), Name: "B", Email: "b@example.com"}
		mustSave(ctx, t, repo, a)
		mustSave(ctx, t, repo, b)
		assert.Equal(t, a, mustFind(ctx, t, repo, a.ID), "user a after saving b")
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
			{ID: id, Name: "Long", Email: strings.Repeat("a", 300) + "@example.com"},
		} {
			err := repo.Save(ctx, u)
			var ve *domain.ValidationError
			assert.ErrorAs(t, err, &ve, "Save(%+v)", u)
			assert.ErrorIs(t, err, domain.ErrInvalid, "Save(%+v)", u)
		}
		_, err := repo.FindByID(ctx, id)
		assert.ErrorIs(t, err, domain.ErrNotFound, "after rejected saves")
	}},
	{"stored users do not alias caller memory", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		want := domain.User{ID: UniqueID(t), Name: "Original", Email: "orig@example.com"}
		in := want
		require.NoError(t, repo.Save(ctx, &in))
		in.Name = "changed after Save"
		out, err := repo.FindByID(ctx, want.ID)
		require.NoError(t, err)
		out.Name = "changed after FindByID"
		assert.Equal(t, want, mustFind(ctx, t, repo, want.ID), "untouched by callers")
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
			assert.NoError(t, err, "concurrent Save")
		}
		got := mustFind(ctx, t, repo, id)
		var i int
		_, err := fmt.Sscanf(got.Name, "writer-%d", &i)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("w%d@example.com", i), got.Email, "stored %+v mixes fields of different writers", got)
	}},
	{"cancelled context fails and stores nothing", func(ctx context.Context, t *testing.T, repo port.UserRepository) {
		dead, cancel := context.WithCancel(ctx)
		cancel()
		u := domain.User{ID: UniqueID(t), Name: "Late", Email: "late@example.com"}
		assert.ErrorIs(t, repo.Save(dead, &u), context.Canceled)
		_, err := repo.FindByID(dead, u.ID)
		assert.ErrorIs(t, err, context.Canceled)
		_, err = repo.FindByID(ctx, u.ID)
		assert.ErrorIs(t, err, domain.ErrNotFound, "a Save with a cancelled context stored the user")
	}},
}

func mustSave(ctx context.Context, t *testing.T, repo port.UserRepository, u domain.User) {
	t.Helper()
	require.NoError(t, repo.Save(ctx, &u), "Save(%+v)", u)
}

func mustFind(ctx context.Context, t *testing.T, repo port.UserRepository, id string) domain.User {
	t.Helper()
	u, err := repo.FindByID(ctx, id)
	require.NoError(t, err, "FindByID(%q)", id)
	require.NotNil(t, u, "FindByID(%q) returned nil without an error", id)
	return *u
}
