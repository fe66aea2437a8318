//go:build integration

package pgshard_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/pgretry"
	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/internal/pgtest"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard/contract"
)

// TestFaultPostgresRestartedUnderIdleConnections kills PostgreSQL under pools
// full of idle connections and restarts it. pgxpool pings a connection before
// handing it out only after a second idle, and a restart can be quicker than
// that (CI's are), so the pools here never ping: every connection they hand
// out first is one the kill closed. The first reads after the restart (the
// directory's lookup, a shard's Get, the scatter-gather Top) still answer,
// and answer what they did before; a write is not repeated on a connection
// that may have sent it, so the first write after a restart either lands or
// fails with a broken-connection error, and the next one lands (which one
// the kernel decides: pgretry's unit tests cover both). The directory's
// placement of a new key is the exception: insert-if-absent, it is repeated
// and lands. Nothing is lost: every shard holds its rows.
func TestFaultPostgresRestartedUnderIdleConnections(t *testing.T) {
	ctx := context.Background()
	const conns = 4
	neverPing := func(c *pgxpool.Config) {
		c.MaxConns = conns
		c.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	}
	names := pgtest.Names(t, 4)
	var pools []*pgxpool.Pool
	var stores []shard.Store
	for _, name := range names[:3] {
		p := pgtest.Pool(t, name, neverPing)
		s := pgshard.NewStore(p, name)
		require.NoError(t, s.CreateSchema(ctx))
		pools, stores = append(pools, p), append(stores, s)
	}
	dirPool := pgtest.Pool(t, names[3], neverPing)
	table, err := pgshard.NewTable(ctx, dirPool)
	require.NoError(t, err)
	pools = append(pools, dirPool)
	dir := shard.NewDirectory(table, 3)
	users := contract.Users(rand.New(rand.NewPCG(17, 17)), 300, 40)
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	require.NoError(t, dir.PlaceAll(ctx, ids))
	c, err := shard.NewCluster(dir, stores...)
	require.NoError(t, err)
	require.NoError(t, c.Load(ctx, users))
	top, err := c.Top(ctx, shard.TopOptions{Limit: 10})
	require.NoError(t, err)

	killAndRestart := func() {
		t.Helper()
		for _, p := range pools { // every connection the pool may hold, open and idle
			var held []*pgxpool.Conn
			for range conns {
				cn, err := p.Acquire(ctx)
				require.NoError(t, err)
				held = append(held, cn)
			}
			for _, cn := range held {
				cn.Release()
			}
			require.EqualValues(t, conns, p.Stat().IdleConns())
		}
		stack.Kill(t, string(stack.Postgres))
		stack.Restart(t, string(stack.Postgres))
	}

	killAndRestart()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	u := users[123]
	got, err := c.Get(rctx, u.ID) // the directory's Lookup, then the shard's Get
	require.NoError(t, err, "the first read after the restart")
	assert.Equal(t, u, got)
	page, err := c.Top(rctx, shard.TopOptions{Limit: 10})
	require.NoError(t, err, "scatter-gather after the restart")
	assert.Equal(t, top.Users, page.Users)
	u.Score++
	require.NoError(t, c.Put(rctx, u), "a write once the reads have dropped the dead connections")

	killAndRestart()
	// The directory's Assign is insert-if-absent (ON CONFLICT DO NOTHING): a
	// repeat can neither undo its first run nor a concurrent Assign, so it is
	// repeated on a new connection, and the first placement after the
	// restart lands.
	const newKey = 1 << 40
	placed, err := dir.Place(rctx, newKey)
	require.NoError(t, err, "the first directory placement after the restart")
	again, ok, err := table.Lookup(rctx, newKey)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, placed, again, "placed once")
	u.Score++
	if err := c.Put(rctx, u); err != nil { // the directory's Lookup is a read: this is the shard's write
		assert.True(t, pgretry.BrokenConn(err), "the first write after the restart fails only on a broken connection: %v", err)
		assert.False(t, pgconn.SafeToRetry(err), "and only when it may have reached the server (else it is repeated): %v", err)
		t.Logf("first write after the restart: %v", err)
		require.NoError(t, c.Put(rctx, u), "the next write gets a new connection")
	}
	got, err = c.Get(rctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u, got)
	counts, err := c.Counts(rctx)
	require.NoError(t, err)
	assert.Equal(t, int64(len(users)), counts[0]+counts[1]+counts[2], "no row lost")
}
