//go:build integration

package pool

import (
	"context"
	"database/sql"
	"errors"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/internal/pgtest"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
)

// database returns the URL of a fresh database holding Table's 2,000 users.
func database(t *testing.T) string {
	t.Helper()
	name := pgtest.Names(t, 1)[0]
	require.NoError(t, Table(context.Background(), pgtest.Pool(t, name), 2000))
	url, err := pgshard.URL(stack.DatabaseURL(), name)
	require.NoError(t, err)
	return url
}

func sqlDB(t *testing.T, url string, maxOpen, maxIdle int) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxIdle)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// The leak the article describes, seen through db.Stats(): a handler that
// returns without rows.Close() holds its connection for good, so after
// MaxOpenConns requests every request waits, WaitCount climbs, and InUse
// stays at MaxOpenConns after the load stops. The fixed handler, with no
// more clients than connections, keeps WaitCount flat.
func TestLeakDetectedFromStats(t *testing.T) {
	url := database(t)
	ctx := context.Background()
	leak := Run(ctx, sqlDB(t, url, 4, 4), Leaky, 8, time.Second, 200*time.Millisecond)
	assert.LessOrEqual(t, leak.Done, int64(4), "at most one request per connection, then nothing")
	assert.Positive(t, leak.Stuck, "requests blocked in db.Query for good")
	assert.Equal(t, 4, leak.Idle.InUse)
	assert.Greater(t, leak.Waits[4], leak.Waits[0])
	assert.Contains(t, leak.Verdict(), "leak")

	fixed := Run(ctx, sqlDB(t, url, 4, 4), Fixed, 4, time.Second, 2*time.Second)
	assert.Positive(t, fixed.Done)
	assert.Zero(t, fixed.Failed+fixed.Stuck)
	assert.Equal(t, []int64{0, 0, 0, 0, 0}, fixed.Waits, "WaitCount flat")
	assert.Zero(t, fixed.Idle.InUse)
	assert.Contains(t, fixed.Verdict(), "healthy")
}

// The article: "If db.Stats().WaitCount is continuously increasing and InUse
// ≈ MaxOpenConns, this is a connection leak". A pool that is only too small
// shows the same two signs: 16 clients on 2 connections, every rows closed,
// WaitCount climbs and InUse is 2 under load. What tells them apart is InUse
// once the requests stop: 0 here.
func TestArticleLeakSignatureAlsoFitsASmallPool(t *testing.T) {
	small := Run(context.Background(), sqlDB(t, database(t), 2, 2), Fixed, 16, time.Second, 2*time.Second)
	assert.Greater(t, small.Waits[4], small.Waits[2], "WaitCount still rising in the second half")
	assert.Greater(t, small.Waits[2], small.Waits[0])
	assert.Equal(t, 2, small.InUseLoad, "InUse = MaxOpenConns under load (the highest of the quarter samples)")
	assert.Zero(t, small.Idle.InUse, "nothing held once idle")
	assert.Zero(t, small.Failed+small.Stuck)
	assert.Contains(t, small.Verdict(), "saturated")
}

// "goroutines are forgetting to call rows.Close()": forgetting it leaks only
// if the rows are not read to the end. database/sql closes rows when Next
// returns false, so a handler that reads every row frees its connection.
func TestArticleForgottenCloseLeaksOnlyOnAnEarlyReturn(t *testing.T) {
	e := Run(context.Background(), sqlDB(t, database(t), 4, 4), DrainedNoClose, 4, time.Second, 2*time.Second)
	assert.Greater(t, e.Done, int64(4), "more requests than connections")
	assert.Zero(t, e.Failed+e.Stuck)
	assert.Zero(t, e.Idle.InUse)
	assert.NotContains(t, e.Verdict(), "leak")
}

// "If MaxIdleConns < MaxOpenConns, excess connections are closed after every
// request": with database/sql's default MaxIdleConns (2), 16 clients making
// 20 requests each on up to 16 connections close some connections on their
// return (MaxIdleClosed > 0), not every one: only those that find the idle
// list full. Counted by requests, not time: a reopened connection is a new
// backend and a SCRAM handshake, slow on a loaded machine.
func TestArticleMaxIdleClosesSomeReturnsNotEvery(t *testing.T) {
	url := database(t)
	ctx := context.Background()
	run := func(maxIdle int) (closed, requests int64) {
		db := sqlDB(t, url, 16, maxIdle)
		errs := make([]error, 16)
		var wg sync.WaitGroup
		for c := range errs {
			wg.Go(func() {
				for i := range 20 {
					if err := Fixed(ctx, db, int64(1+c*20+i)); err != nil {
						errs[c] = err
						return
					}
				}
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		return db.Stats().MaxIdleClosed, 16 * 20
	}
	closed, requests := run(2)
	assert.Positive(t, closed, "connections closed on return")
	assert.Less(t, closed, requests, "not after every request")
	steady, _ := run(16)
	assert.Zero(t, steady, "MaxIdleConns = MaxOpenConns: none")
	t.Logf("MaxIdleConns 2: %d of %d requests closed a connection; 16: %d", closed, requests, steady)
}

// "MaxOpenConns not set (defaults to unlimited), causing the application to
// open thousands of connections and crash PostgreSQL": the server refuses
// the connections past its limit (SQLSTATE 53300) and keeps serving. Shown
// with a role's CONNECTION LIMIT 3 standing in for max_connections, which
// refuses with the same SQLSTATE (superusers are exempt from both limits, so
// the role is an ordinary one).
func TestArticleUnlimitedPoolIsRefusedNotACrash(t *testing.T) {
	ctx := context.Background()
	name := pgtest.Names(t, 1)[0]
	admin, err := pgx.Connect(ctx, stack.DatabaseURL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	role := name + "_app"
	_, err = admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'app' CONNECTION LIMIT 3")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	base, err := pgshard.URL(stack.DatabaseURL(), name)
	require.NoError(t, err)
	u, err := neturl.Parse(base)
	require.NoError(t, err)
	u.User = neturl.UserPassword(role, "app")
	url := u.String()
	db := sqlDB(t, url, 0, 2) // MaxOpenConns 0: unlimited, as the article warns
	errs := make([]error, 12)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = db.ExecContext(ctx, `SELECT pg_sleep(0.3)`) })
	}
	wg.Wait()
	refused := 0
	for _, err := range errs {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "53300" {
			refused++
		}
	}
	assert.Positive(t, refused, "connections past the limit refused with 53300: %v", errors.Join(errs...))
	var one int
	require.NoError(t, admin.QueryRow(ctx, `SELECT 1`).Scan(&one), "the server still answers")
	require.NoError(t, db.Close(), "the role's connections end before the role is dropped")
}

// One backend's memory, from /proc and from pg_backend_memory_contexts.
func TestBackendMemory(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, database(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	m, err := Backend(ctx, conn)
	require.NoError(t, err)
	assert.Positive(t, m.PID)
	assert.Positive(t, m.Contexts)
	assert.LessOrEqual(t, m.CtxUse, m.Contexts)
	if m.Visible {
		assert.Positive(t, m.USS)
		assert.LessOrEqual(t, m.USS, m.RSS)
		assert.LessOrEqual(t, m.PSS, m.RSS)
		t.Logf("backend %d: RSS %d kB, PSS %d kB, private %d kB, contexts %d kB", m.PID, m.RSS>>10, m.PSS>>10, m.USS>>10, m.Contexts>>10)
	} else {
		t.Logf("backend %d is not a process of this machine (PostgreSQL in a container?): contexts %d kB only", m.PID, m.Contexts>>10)
	}
}

// A short sweep on both drivers: every size answers, p50 ≤ p99.
func TestSweep(t *testing.T) {
	ps, err := Sweep(context.Background(), database(t), []Driver{SQL, PgxPool}, []int{1, 4}, 8, 200*time.Millisecond, 2000)
	require.NoError(t, err)
	require.Len(t, ps, 4)
	for _, p := range ps {
		assert.Positive(t, p.Queries, "%s %d", p.Driver, p.Conns)
		assert.LessOrEqual(t, p.P50, p.P99)
	}
}

// The article: "Memory per connection 5–10 MB (virtual memory, shared
// buffers overhead)" and "500 connections × 10 MB = 5 GB RAM just for
// connection overhead". Ten idle backends of this PostgreSQL 15, measured:
// the memory one more connection costs (its private pages; or, where the
// backend is not a process of this machine, its memory contexts) is under
// the article's low end, and 500 of them under half its 5 GB. RSS is larger
// because it counts shared pages (shared_buffers, libraries) in every
// backend that touched them. A busy backend grows: work_mem per sort or hash,
// its caches of the tables it has touched.
func TestArticleBackendMemoryIsNot10MB(t *testing.T) {
	ctx := context.Background()
	url := database(t)
	var private int64
	visible := true
	for range 10 {
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		m, err := Backend(ctx, conn)
		require.NoError(t, err)
		visible = visible && m.Visible
		if m.Visible {
			private += m.USS
		} else {
			private += m.Contexts
		}
	}
	per := private / 10
	assert.Less(t, per, int64(5<<20), "under the article's 5 MB")
	assert.Less(t, 500*per, int64(5<<30)/2, "500 connections: under half the article's 5 GB")
	t.Logf("per idle connection: %d kB (%s); 500 connections: %d MB", per>>10, map[bool]string{true: "private pages, /proc", false: "memory contexts"}[visible], 500*per>>20)
}

// Run counts a request stuck only once the requests have settled, not after a
// fixed sleep: here each request takes 300 ms on the one connection (no
// context, as the article's handler), the client gives up on it after 200 ms
// and sends the next, so a queue of slow requests is still draining when the
// window ends (what a loaded machine does to quick ones). They all finish:
// none is stuck, nothing is held once idle. A fixed sleep of twice the
// timeout counted the queue as stuck and called the pool leaking.
func TestRunWaitsForSlowRequestsToFinish(t *testing.T) {
	slow := func(_ context.Context, db *sql.DB, _ int64) error {
		_, err := db.Exec(`SELECT pg_sleep(0.3)`)
		return err
	}
	e := Run(context.Background(), sqlDB(t, database(t), 1, 1), slow, 1, time.Second, 100*time.Millisecond)
	assert.Zero(t, e.Stuck, "slow requests are not stuck")
	assert.Zero(t, e.Failed)
	assert.Greater(t, e.Done, e.InWindow, "requests finished after the window")
	assert.Zero(t, e.Idle.InUse)
	assert.Contains(t, e.Verdict(), "saturated")
}

// Nor does Run sleep when there is nothing to wait for: with a 10 s request
// timeout and every request quick, it returns once the last one has, not
// twice the timeout after the window (20 s).
func TestRunReturnsOnceRequestsSettle(t *testing.T) {
	t0 := time.Now()
	e := Run(context.Background(), sqlDB(t, database(t), 4, 4), Fixed, 4, 500*time.Millisecond, 10*time.Second)
	took := time.Since(t0)
	assert.Positive(t, e.Done)
	assert.Zero(t, e.Failed+e.Stuck)
	assert.Less(t, took, 10*time.Second, "Run took %v for a 500 ms window", took)
}
