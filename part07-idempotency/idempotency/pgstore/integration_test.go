//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/contract"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/pgstore"
)

// pool connects to the stack's PostgreSQL and migrates it, or skips the test
// when it is not running (fails under STACK_REQUIRED=1).
func pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	stack.Require(t, stack.Postgres)
	cfg, err := pgstore.Config(stack.DatabaseURL())
	require.NoError(t, err)
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	require.NoError(t, pgstore.Migrate(t.Context(), p))
	return p
}

// TestContract runs the same suite as memstore and redisstore, in real time.
func TestContract(t *testing.T) {
	p := pool(t)
	t.Cleanup(func() { deleteTenantsLike(t, p, "TestContract%") })
	contract.Run(t, contract.Harness{New: func(*testing.T) idempotency.Store { return pgstore.New(p) }})
}

func deleteTenantsLike(t testing.TB, p *pgxpool.Pool, pattern string) {
	t.Helper()
	// t.Context is already cancelled while cleanups run.
	_, err := p.Exec(context.Background(), `DELETE FROM part07.idempotency_keys WHERE tenant LIKE $1`, pattern)
	assert.NoError(t, err, "cleanup")
}

// TestMigrateConcurrently runs Migrate from eight goroutines at once: the
// advisory lock serializes CREATE SCHEMA / CREATE OR REPLACE FUNCTION.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // the lock waits are bounded
	defer cancel()
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- pgstore.Migrate(ctx, p) }()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}

// TestPurgeDeletesOnlyExpiredRows: expired rows are dead weight until purged.
func TestPurgeDeletesOnlyExpiredRows(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx := t.Context()
	s := pgstore.New(p)
	tenant := fmt.Sprintf("TestPurge-%d", time.Now().UnixNano())
	t.Cleanup(func() { deleteTenantsLike(t, p, tenant) })
	for i, ttl := range []time.Duration{time.Millisecond, time.Millisecond, time.Hour} {
		_, err := s.Claim(ctx, idempotency.Key{Tenant: tenant, ID: fmt.Sprint(i)}, idempotency.Record{State: idempotency.InProgress, Token: "t"}, ttl)
		require.NoError(t, err)
	}
	time.Sleep(10 * time.Millisecond)
	for {
		n, err := s.Purge(ctx, 1000)
		require.NoError(t, err)
		if n < 1000 {
			break
		}
	}
	var left int
	require.NoError(t, p.QueryRow(ctx, `SELECT count(*) FROM part07.idempotency_keys WHERE tenant = $1`, tenant).Scan(&left))
	assert.Equal(t, 1, left, "the live row stays")
}

// The article's schema, run on the real PostgreSQL: its partial index is
// rejected, and its TEXT response_body cannot hold a NUL byte or a body that
// is not UTF-8. (Errata in the chapter README.)
func TestArticleSchemaOnPostgres(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx := t.Context()
	conn, err := p.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	schema := fmt.Sprintf("part07_article_%d", time.Now().UnixNano())
	_, err = conn.Exec(ctx, `CREATE SCHEMA `+schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = p.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	_, err = conn.Exec(ctx, `SET search_path = `+schema)
	require.NoError(t, err)
	defer func() { _, _ = conn.Exec(context.Background(), `RESET search_path`) }()

	_, err = conn.Exec(ctx, `CREATE TABLE idempotency_keys (
		idemp_key        VARCHAR(255) NOT NULL,
		payload_hash     CHAR(64)     NOT NULL,
		status           VARCHAR(50)  NOT NULL,
		response_code    INT,
		response_headers JSONB,
		response_body    TEXT,
		created_at       TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
		expires_at       TIMESTAMPTZ  NOT NULL,
		PRIMARY KEY (idemp_key))`)
	require.NoError(t, err, "the table itself is fine")

	_, err = conn.Exec(ctx, `CREATE UNIQUE INDEX idx_idemp_active ON idempotency_keys (idemp_key) WHERE expires_at > NOW()`)
	assertSQLState(t, err, "42P17", "functions in index predicate must be marked IMMUTABLE")

	for _, body := range []string{"a\x00b", "\x1f\x8b\x08\x00gzip"} {
		_, err = conn.Exec(ctx, `INSERT INTO idempotency_keys (idemp_key, payload_hash, status, response_code, response_body, expires_at)
			VALUES ($1, repeat('a', 64), 'completed', 200, $2, now() + interval '1 day')`, fmt.Sprintf("%x", body), body)
		assertSQLState(t, err, "22021", `invalid byte sequence for encoding "UTF8"`)
	}
}

func assertSQLState(t *testing.T, err error, code, msg string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if assert.ErrorAs(t, err, &pgErr) {
		assert.Equal(t, code, pgErr.Code)
		assert.True(t, strings.HasPrefix(pgErr.Message, msg), "message %q", pgErr.Message)
	}
}

// TestLateClaimClaimsNothing: a claim or renewal the server runs after the
// caller's deadline (here a deadline already past, as when a stalled server
// wakes) is undone, so it cannot block the key; before the deadline it writes
// as usual.
func TestLateClaimClaimsNothing(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx := t.Context()
	tenant := fmt.Sprintf("TestLateClaim-%d", time.Now().UnixNano())
	t.Cleanup(func() { deleteTenantsLike(t, p, tenant) })
	claim := func(id string, deadline time.Time) error {
		var claimed bool
		return p.QueryRow(ctx, `SELECT claimed FROM part07.idempotency_claim($1, $2, repeat('a', 64), 'late', interval '1 minute', $3)`,
			tenant, id, deadline).Scan(&claimed)
	}
	renew := func(id string, deadline time.Time) error {
		var held bool
		return p.QueryRow(ctx, `SELECT part07.idempotency_renew($1, $2, repeat('a', 64), 'late', interval '1 minute', $3)`,
			tenant, id, deadline).Scan(&held)
	}
	past := time.Now().Add(-time.Millisecond)
	assertSQLState(t, claim("k", past), "IK001", "the claim reached PostgreSQL after its deadline")
	assertSQLState(t, renew("k2", past), "IK001", "the renewal reached PostgreSQL after its deadline")
	for _, id := range []string{"k", "k2"} {
		got, err := pgstore.New(p).Claim(ctx, idempotency.Key{Tenant: tenant, ID: id}, idempotency.Record{State: idempotency.InProgress, Token: "next"}, time.Minute)
		require.NoError(t, err)
		assert.Nil(t, got, "the late call stored nothing: the next Claim wins, found %+v", got)
	}
	assert.NoError(t, claim("k3", time.Now().Add(time.Minute)), "in time")
	assert.NoError(t, renew("k4", time.Now().Add(time.Minute)), "in time")
}
