//go:build integration

package patterns

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// The pattern suite on the stack's Redis and PostgreSQL.
func TestIntegrationSuite(t *testing.T) {
	runSuite(t, backend{name: "postgres", newEnv: func(t *testing.T) *env {
		rdb, prefix := fixture.Redis(t)
		pg := PGStore{Pool: migrated(t)}
		t.Cleanup(func() { _ = pg.DeletePrefix(context.Background(), prefix) })
		e := newEnvOver(t, "postgres", false, rdb, prefix, pg)
		e.expire = func(key string) { require.NoError(t, rdb.Del(context.Background(), key).Err()) }
		return e
	}})
}

var migrateOnce sync.Once

// migrated returns a pool on a migrated database.
func migrated(t *testing.T) *pgxpool.Pool {
	pool := fixture.Postgres(t)
	var err error
	migrateOnce.Do(func() { err = Migrate(context.Background(), pool) })
	require.NoError(t, err)
	return pool
}

func TestIntegrationMigrateConcurrently(t *testing.T) {
	pool := fixture.Postgres(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- Migrate(context.Background(), pool) }()
	}
	for range 4 {
		assert.NoError(t, <-errs)
	}
}

// TestIntegrationPostgresRefusesWhatValidateRejects: why Put validates. Written
// straight to PostgreSQL, these fail with the SQLSTATE shown, as ErrRejected; the
// patterns refuse them as ErrInvalid before buffering or writing anything.
func TestIntegrationPostgresRefusesWhatValidateRejects(t *testing.T) {
	pg := PGStore{Pool: migrated(t)}
	prefix := fixture.Prefix(t)
	t.Cleanup(func() { _ = pg.DeletePrefix(context.Background(), prefix) })
	for _, tc := range []struct {
		name, code string
		p          Product
	}{
		{"NUL byte", "22021", Product{ID: prefix + "nul", Name: "a\x00b"}},
		{"invalid UTF-8", "22021", Product{ID: prefix + "utf8", Name: "\xc3\x28"}},
		{"name over MaxNameLen", "23514", Product{ID: prefix + "long", Name: strings.Repeat("y", MaxNameLen+1)}},
		{"negative price", "23514", Product{ID: prefix + "neg", PriceCents: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pg.Put(context.Background(), tc.p)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			assert.Equal(t, tc.code, pgErr.Code, pgErr.Message)
			assert.ErrorIs(t, err, ErrRejected)
			if tc.name != "negative price" {
				assert.ErrorIs(t, tc.p.Validate(), ErrInvalid)
			}
			err = pg.PutBatch(context.Background(), []Product{{ID: prefix + "ok"}, tc.p})
			assert.ErrorIs(t, err, ErrRejected, "a batch with the row")
		})
	}
	n, err := pg.Count(context.Background(), prefix)
	require.NoError(t, err)
	assert.Zero(t, n, "a rejected batch commits nothing")
}
