//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
	"github.com/sysdesign-masterclass/golang/part07-idempotency/internal/pgmigrate"
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

// stallGate is an advisory lock key: while the test holds it, a row written
// for a tenant starting "StallCommit-" cannot commit (see stallCommits).
const stallGate = 0x7061727430370002

// stallCommits installs, for the test's duration, a deferred constraint
// trigger that makes the commit of any row for a tenant starting
// "StallCommit-" wait on the advisory lock stallGate, and returns a
// connection holding that lock, and open, which lets those commits through.
// It models a commit that stalls after the statement ran: a WAL flush on a
// stalled disk, or a synchronous standby that does not answer (there too the
// row stays invisible until the commit ends). Other tenants are not touched.
func stallCommits(t *testing.T, p *pgxpool.Pool) (open func()) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, pgmigrate.Run(ctx, p,
		// A commit stalled in a WAL flush or on a synchronous standby does
		// not end on a cancel request (pgx sends one when the caller's
		// context ends), so neither does this wait.
		fmt.Sprintf(`CREATE OR REPLACE FUNCTION part07.test_stall_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			LOOP
				BEGIN
					PERFORM pg_advisory_xact_lock_shared(%d);
					RETURN NULL;
				EXCEPTION WHEN query_canceled THEN
				END;
			END LOOP;
		END $$`, int64(stallGate)),
		`DROP TRIGGER IF EXISTS test_stall_commit ON part07.idempotency_keys`,
		`CREATE CONSTRAINT TRIGGER test_stall_commit AFTER INSERT OR UPDATE ON part07.idempotency_keys
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.tenant LIKE 'StallCommit-%')
		EXECUTE FUNCTION part07.test_stall_commit()`))
	t.Cleanup(func() {
		assert.NoError(t, pgmigrate.Run(context.Background(), p,
			`DROP TRIGGER IF EXISTS test_stall_commit ON part07.idempotency_keys`,
			`DROP FUNCTION IF EXISTS part07.test_stall_commit()`), "cleanup")
	})
	gate, err := p.Acquire(ctx)
	require.NoError(t, err)
	_, err = gate.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(stallGate))
	require.NoError(t, err)
	var once sync.Once
	open = func() {
		once.Do(func() {
			_, err := gate.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(stallGate))
			assert.NoError(t, err, "open the gate")
			gate.Release()
		})
	}
	t.Cleanup(open)
	return open
}

// waiting reports whether a statement that contains fragment waits on a
// lock, as a release waiting for a claim's commit does.
func waiting(ctx context.Context, p *pgxpool.Pool, fragment string) bool {
	var n int
	err := p.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`, fragment).Scan(&n)
	return err == nil && n > 0
}

// TestReleaseWaitsForAClaimStillCommitting: a Claim passes its deadline
// check, then its commit stalls past the deadline, so the caller gets an
// error and releases its token (the middleware's abandon). The row is not
// visible yet: a DELETE that does not wait for it deletes nothing and reports
// success, and the claim lands afterwards, held by nobody, answering 409
// until ClaimTTL. Release must wait for the commit and delete what landed.
func TestReleaseWaitsForAClaimStillCommitting(t *testing.T) {
	p := pool(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := pgstore.New(p)
	key := idempotency.Key{Tenant: fmt.Sprintf("StallCommit-%d", time.Now().UnixNano()), ID: "k"}
	t.Cleanup(func() { deleteTenantsLike(t, p, key.Tenant) })
	open := stallCommits(t, p)

	cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := s.Claim(cctx, key, idempotency.Record{State: idempotency.InProgress, Token: "stalled"}, time.Minute)
	ccancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "the commit stalled past the deadline")

	released := make(chan error, 1)
	go func() { released <- s.Release(ctx, key, "stalled") }()
	// Either Release returned already (it did not wait) or it waits on the
	// claim's commit; then let the commit through.
	var early bool
	require.Eventually(t, func() bool {
		select {
		case err := <-released:
			require.NoError(t, err)
			early = true
			return true
		default:
			return waiting(ctx, p, "idempotency_release")
		}
	}, 30*time.Second, 10*time.Millisecond, "Release neither returned nor waited")
	open()
	if !early {
		select {
		case err := <-released:
			require.NoError(t, err)
		case <-ctx.Done():
			require.FailNow(t, "Release did not return after the commit")
		}
	}
	require.Eventually(t, func() bool { return !waiting(ctx, p, "idempotency_claim") }, 30*time.Second, 10*time.Millisecond, "the stalled claim committed")

	got, err := s.Claim(ctx, key, idempotency.Record{State: idempotency.InProgress, Token: "retry"}, time.Minute)
	require.NoError(t, err)
	assert.Nil(t, got, "the retry claims the key; found a claim nobody holds: %+v", got)
	assert.False(t, early, "Release returned before the claim it releases had committed")
}
