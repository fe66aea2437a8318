//go:build integration

package graph

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

var schemas atomic.Int32

// testSchema opens the stack's PostgreSQL and creates a schema of its own
// for t (dropped after), so statement counts are t's alone. The pool's
// connections are opened here, outside any synctest bubble.
func testSchema(t *testing.T, shape Shape, configure ...func(*pgxpool.Config)) (*pgxpool.Pool, *Postgres) {
	t.Helper()
	stack.Require(t, stack.Postgres)
	ctx := t.Context()
	cfg, err := pgxpool.ParseConfig(stack.DatabaseURL())
	require.NoError(t, err)
	cfg.MaxConns, cfg.MinConns = 4, 0
	for _, f := range configure {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	schema := fmt.Sprintf("part12_test_%d_%d", os.Getpid(), schemas.Add(1))
	require.NoError(t, Migrate(ctx, pool, schema, shape))
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		assert.NoError(t, err)
	})
	var conns []*pgxpool.Conn
	for range cfg.MaxConns {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	store, err := NewPostgres(pool, schema)
	require.NoError(t, err)
	return pool, store
}

// The N+1 and its fix, counted by PostgreSQL itself (pg_stat_statements):
// the nested query runs 1 + 20 + 100 + 300 statements on the schema's tables
// without DataLoaders, and 4 with them (users, one `user_id = ANY($1)` for
// the posts, one for the comments, one for the authors), with the same
// answer. The resolvers run in a synctest bubble, so each loader's 5 ms wait
// ends on a fake clock once every resolver of its level has asked; the
// queries go to the real server.
func TestDataLoaderOnPostgres(t *testing.T) {
	pool, store := testSchema(t, Shape{Users: 30, PostsPerUser: 6, CommentsPerPost: 4})
	count := func() int64 {
		n, err := Statements(t.Context(), pool, store.Schema())
		require.NoError(t, err)
		return n
	}
	run := func(o Options) response {
		var r response
		synctest.Test(t, func(t *testing.T) {
			_, r = post(t, NewHandler(o), nested)
		})
		require.Empty(t, r.Errors)
		return r
	}
	start := count()
	naive := run(Options{Store: store, Ping: &ping.Service{}, NoDataLoader: true})
	mid := count()
	assert.EqualValues(t, 1+20+20*5+20*5*3, mid-start, "N+1: statements PostgreSQL executed")

	batched := run(Options{Store: store, Ping: &ping.Service{}})
	assert.EqualValues(t, 4, count()-mid, "one statement per level")
	assert.JSONEq(t, string(naive.Data), string(batched.Data))

	var calls int64
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
		WHERE query LIKE '%' || $1 || '.posts WHERE user_id = ANY%'`, store.Schema()).Scan(&calls))
	assert.EqualValues(t, 1+20, calls, "the posts statement: 20 calls of one id each, then one with all 20")
}

// The same on the in-memory store and on PostgreSQL: the data the demo
// falls back to is the data it reads from the database.
func TestMemoryMatchesPostgres(t *testing.T) {
	shape := Shape{Users: 12, PostsPerUser: 3, CommentsPerPost: 2}
	_, store := testSchema(t, shape)
	q := `{ users(limit: 10) { id name posts(limit: 2) { id title author { id } comments(limit: 5) { id body author { name } } } } }`
	var a, b response
	synctest.Test(t, func(t *testing.T) {
		_, a = post(t, NewHandler(Options{Store: store, Ping: &ping.Service{}}), q)
		_, b = post(t, NewHandler(Options{Store: NewMemory(shape), Ping: &ping.Service{}}), q)
	})
	require.Empty(t, a.Errors)
	require.Empty(t, b.Errors)
	assert.JSONEq(t, string(a.Data), string(b.Data))
}

// The article's batch query, `SELECT * FROM posts WHERE user_id IN (...)`,
// has no per-user limit: for posts(limit: 5) it reads every post of every
// user in the batch and leaves the cut to the resolver. PostsByUser applies
// the limit in SQL with row_number(), so PostgreSQL returns only what the
// query asked for.
func TestArticleINQueryReadsEveryPost(t *testing.T) {
	pool, store := testSchema(t, Shape{Users: 10, PostsPerUser: 40, CommentsPerPost: 0})
	ids := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	var article int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT * FROM `+store.Schema()+`.posts WHERE user_id IN (1,2,3,4,5,6,7,8,9,10)) p`).Scan(&article))
	ours, err := store.PostsByUser(t.Context(), ids, 5)
	require.NoError(t, err)
	assert.Equal(t, 400, article, "every post of the 10 users")
	assert.Len(t, ours, 50, "5 per user")
}
