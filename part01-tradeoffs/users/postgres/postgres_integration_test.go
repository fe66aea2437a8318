//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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
	p, err := pgxpool.New(t.Context(), stack.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if err := postgres.Migrate(t.Context(), p); err != nil {
		t.Fatal(err)
	}
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
		if _, err := p.Exec(t.Context(), `DROP SCHEMA part01 CASCADE`); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- postgres.Migrate(t.Context(), p) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Migrate on an empty database: %v", err)
			}
		}
	}
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
	if _, err := p.Exec(context.Background(), `DELETE FROM part01.users WHERE id = ANY($1)`, ids); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func TestSaveReachesTheTable(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx := t.Context()
	u := domain.User{ID: contract.UniqueID(t), Name: "Grace", Email: "grace@example.com"}
	t.Cleanup(func() { deleteUsers(t, p, u.ID) })
	if err := postgres.New(p).Save(ctx, &u); err != nil {
		t.Fatal(err)
	}
	var name, email string
	var rows int
	err := p.QueryRow(ctx, `SELECT name, email, count(*) OVER () FROM part01.users WHERE id = $1`, u.ID).Scan(&name, &email, &rows)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 1 || name != u.Name || email != u.Email {
		t.Fatalf("row = (%q, %q) × %d, want (%q, %q) × 1", name, email, rows, u.Name, u.Email)
	}

	// An upsert bumps updated_at and leaves created_at alone.
	u.Name = "Grace Hopper"
	if err := postgres.New(p).Save(ctx, &u); err != nil {
		t.Fatal(err)
	}
	var bumped bool
	err = p.QueryRow(ctx, `SELECT updated_at > created_at FROM part01.users WHERE id = $1`, u.ID).Scan(&bumped)
	if err != nil || !bumped {
		t.Fatalf("updated_at > created_at = %v (err %v), want true after an upsert", bumped, err)
	}
}

func TestCheckConstraintsGuardWritesAroundTheAdapter(t *testing.T) {
	t.Parallel()
	p := pool(t)
	for _, row := range [][3]string{
		{"", "No ID", "noid@example.com"},
		{contract.UniqueID(t), "Bad Email", "not-an-email"},
		{contract.UniqueID(t), " ", "blank@example.com"},
	} {
		_, err := p.Exec(t.Context(), `INSERT INTO part01.users (id, name, email) VALUES ($1, $2, $3)`, row[0], row[1], row[2])
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
			t.Errorf("raw INSERT %q: err = %v, want check_violation 23514", row, err)
		}
	}
}

func TestRepositoryWorksInsideACallersTransaction(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx := t.Context()
	u := domain.User{ID: contract.UniqueID(t), Name: "Rolled Back", Email: "rb@example.com"}
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	repo := postgres.New(tx)
	if err := repo.Save(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.FindByID(ctx, u.ID); err != nil {
		t.Fatalf("the transaction cannot see its own write: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.New(p).FindByID(ctx, u.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("after rollback FindByID: err = %v, want ErrNotFound", err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	p := pool(t) // has migrated once already
	if err := postgres.Migrate(t.Context(), p); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	var cols int
	err := p.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = 'part01' AND table_name = 'users'`).Scan(&cols)
	if err != nil || cols != 5 {
		t.Fatalf("part01.users has %d columns (err %v), want 5", cols, err)
	}
}
