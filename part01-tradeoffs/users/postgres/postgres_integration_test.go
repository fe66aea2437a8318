//go:build integration

package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/contract"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/postgres"
)

// pool connects to the stack's PostgreSQL (DATABASE_URL) and migrates it, or
// skips the test when the database is not running (fails under STACK_REQUIRED=1).
func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	stack.Require(t, stack.Postgres)
	cfg, err := postgres.Config(stack.DatabaseURL())
	require.NoError(t, err)
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	require.NoError(t, postgres.Migrate(t.Context(), p))
	return p
}

// TestMigrateFromScratchConcurrently drops the chapter's schema and lets eight
// goroutines create it at once. Without Migrate's advisory lock this fails
// with "duplicate key value violates unique constraint
// pg_namespace_nspname_index". It is deliberately not parallel: Go runs it to
// completion before any parallel test of this package starts, and no other
// package uses schema part01.
func TestMigrateFromScratchConcurrently(t *testing.T) {
	p := pool(t)
	for range 5 {
		_, err := p.Exec(t.Context(), `DROP SCHEMA part01 CASCADE`)
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- postgres.Migrate(t.Context(), p) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "concurrent Migrate on an empty database")
		}
	}
}

// A table created before the email length cap existed gets it from Migrate,
// enforced on new rows (NOT VALID: old rows are not rejected). Not parallel,
// for the same reason as the test above.
func TestMigrateAddsTheEmailCapToAnOldTable(t *testing.T) {
	p := pool(t)
	ctx := t.Context()
	id := contract.UniqueID(t)
	t.Cleanup(func() { deleteUsers(t, p, id) })
	_, err := p.Exec(ctx, `ALTER TABLE part01.users DROP CONSTRAINT users_email_length`)
	require.NoError(t, err)
	_, err = p.Exec(ctx, `INSERT INTO part01.users (id, name, email) VALUES ($1, 'Old', $2)`, id, strings.Repeat("a", 60<<10)+"@example.com")
	require.NoError(t, err, "the old table took a 60 KB email")

	require.NoError(t, postgres.Migrate(ctx, p))
	require.NoError(t, postgres.Migrate(ctx, p), "twice: idempotent")
	_, err = p.Exec(ctx, `UPDATE part01.users SET name = 'Touched' WHERE id = $1`, id)
	assertCheckViolation(t, err, "an old row must be fixed when it is next written")
	_, err = p.Exec(ctx, `INSERT INTO part01.users (id, name, email) VALUES ($1, 'New', $2)`, contract.UniqueID(t), strings.Repeat("a", 255)+"@x")
	assertCheckViolation(t, err, "new rows are capped")
}

// TestContract runs the same suite as the memory adapter's TestContract.
func TestContract(t *testing.T) {
	p := pool(t)
	contract.Run(t, func(t *testing.T) port.UserRepository {
		return &tracking{UserRepository: postgres.New(p), t: t, pool: p}
	})
}

// tracking deletes, when the test ends, every row the test saved: the
// database is shared with other chapters and with later runs.
type tracking struct {
	port.UserRepository
	t    *testing.T
	pool *pgxpool.Pool
	once sync.Once
	mu   sync.Mutex
	ids  []string
}

func (r *tracking) Save(ctx context.Context, u *domain.User) error {
	if u != nil {
		r.once.Do(func() {
			r.t.Cleanup(func() {
				r.mu.Lock()
				defer r.mu.Unlock()
				deleteUsers(r.t, r.pool, r.ids...)
			})
		})
		r.mu.Lock()
		r.ids = append(r.ids, u.ID)
		r.mu.Unlock()
	}
	return r.UserRepository.Save(ctx, u)
}

func deleteUsers(t *testing.T, p *pgxpool.Pool, ids ...string) {
	t.Helper()
	// t.Context is already cancelled while cleanups run.
	_, err := p.Exec(context.Background(), `DELETE FROM part01.users WHERE id = ANY($1)`, ids)
	assert.NoError(t, err, "cleanup")
}

func assertCheckViolation(t *testing.T, err error, msg string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if assert.ErrorAs(t, err, &pgErr, msg) {
		assert.Equal(t, "23514", pgErr.Code, "check_violation: %s", msg)
	}
}

func TestSaveReachesTheTable(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx := t.Context()
	u := domain.User{ID: contract.UniqueID(t), Name: "Grace", Email: "grace@example.com"}
	t.Cleanup(func() { deleteUsers(t, p, u.ID) })
	require.NoError(t, postgres.New(p).Save(ctx, &u))
	var name, email string
	var rows int
	err := p.QueryRow(ctx, `SELECT name, email, count(*) OVER () FROM part01.users WHERE id = $1`, u.ID).Scan(&name, &email, &rows)
	require.NoError(t, err)
	assert.Equal(t, 1, rows)
	assert.Equal(t, [2]string{u.Name, u.Email}, [2]string{name, email})

	// An upsert bumps updated_at and leaves created_at alone.
	u.Name = "Grace Hopper"
	require.NoError(t, postgres.New(p).Save(ctx, &u))
	var bumped bool
	require.NoError(t, p.QueryRow(ctx, `SELECT updated_at > created_at FROM part01.users WHERE id = $1`, u.ID).Scan(&bumped))
	assert.True(t, bumped, "updated_at > created_at after an upsert")
}

func TestCheckConstraintsGuardWritesAroundTheAdapter(t *testing.T) {
	t.Parallel()
	p := pool(t)
	for _, row := range [][3]string{
		{"", "No ID", "noid@example.com"},
		{contract.UniqueID(t), "Bad Email", "not-an-email"},
		{contract.UniqueID(t), " ", "blank@example.com"},
		{contract.UniqueID(t), "Long Email", strings.Repeat("a", 250) + "@b.cd"},
	} {
		_, err := p.Exec(t.Context(), `INSERT INTO part01.users (id, name, email) VALUES ($1, $2, $3)`, row[0], row[1], row[2])
		assertCheckViolation(t, err, row[1])
	}
}

func TestRepositoryWorksInsideACallersTransaction(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx := t.Context()
	u := domain.User{ID: contract.UniqueID(t), Name: "Rolled Back", Email: "rb@example.com"}
	tx, err := p.Begin(ctx)
	require.NoError(t, err)
	repo := postgres.New(tx)
	require.NoError(t, repo.Save(ctx, &u))
	_, err = repo.FindByID(ctx, u.ID)
	require.NoError(t, err, "the transaction sees its own write")
	require.NoError(t, tx.Rollback(ctx))
	_, err = postgres.New(p).FindByID(ctx, u.ID)
	assert.ErrorIs(t, err, domain.ErrNotFound, "after the rollback")
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	p := pool(t) // has migrated once already
	require.NoError(t, postgres.Migrate(t.Context(), p), "second Migrate")
	var cols int
	require.NoError(t, p.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = 'part01' AND table_name = 'users'`).Scan(&cols))
	assert.Equal(t, 5, cols)
}
