//go:build integration

package pgshard_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part04-sharding/internal/pgtest"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard/contract"
)

func TestPostgresStoreContract(t *testing.T) {
	contract.Store(t, func(t *testing.T) shard.Store { return pgtest.Stores(t, 1)[0] })
}

// Scatter-gather over three PostgreSQL databases returns, page after page,
// what one table answers to ORDER BY score DESC, id DESC LIMIT k OFFSET o.
func TestTopMatchesOneTableOnPostgres(t *testing.T) {
	ctx := context.Background()
	stores := pgtest.Stores(t, 4) // three shards and the oracle's one table
	users := contract.Users(rand.New(rand.NewPCG(4, 4)), 2000, 50)
	require.NoError(t, stores[3].Put(ctx, users...))
	c, err := shard.NewCluster(shard.Jump{N: 3}, stores[0], stores[1], stores[2])
	require.NoError(t, err)
	require.NoError(t, c.Load(ctx, users))
	counts, err := c.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2000), counts[0]+counts[1]+counts[2])

	rows, err := stores[3].Pool().Query(ctx, `SELECT id, name, score FROM users ORDER BY score DESC, id DESC`)
	require.NoError(t, err)
	oracle, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shard.User])
	require.NoError(t, err)
	assert.Equal(t, contract.Oracle(users), oracle, "the in-memory oracle agrees with PostgreSQL's order")
	for _, k := range []int{1, 10, 333, 2000} {
		contract.TopMatches(t, c, oracle, k)
	}
}

// A shard whose server does not answer fails the query with its name, or is
// listed as missing when a partial result is allowed.
func TestTopWithAShardUnreachable(t *testing.T) {
	ctx := context.Background()
	stores := pgtest.Stores(t, 2)
	dead, err := pgshard.Pool(ctx, "postgres://masterclass:masterclass@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2", "nowhere", 1)
	require.NoError(t, err, "pgxpool connects lazily")
	t.Cleanup(dead.Close)
	c, err := shard.NewCluster(shard.Jump{N: 3}, stores[0], stores[1], pgshard.NewStore(dead, "shard_on_port_1"))
	require.NoError(t, err)
	require.NoError(t, stores[0].Put(ctx, shard.User{ID: 1, Name: "a", Score: 1}))
	_, err = c.Top(ctx, shard.TopOptions{Limit: 5})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "shard 2 (shard_on_port_1): top 5: ")
	assert.True(t, pgshard.IsConnectError(err))
	page, err := c.Top(ctx, shard.TopOptions{Limit: 5, AllowPartial: true})
	require.NoError(t, err)
	assert.Equal(t, []shard.User{{ID: 1, Name: "a", Score: 1}}, page.Users)
	require.Len(t, page.Missing, 1)
	assert.Equal(t, 2, page.Missing[0].Shard)
}

// Two hundred concurrent Places of twenty keys agree on one shard per key.
func TestDirectoryOnPostgres(t *testing.T) {
	ctx := context.Background()
	name := pgtest.Names(t, 1)[0]
	table, err := pgshard.NewTable(ctx, pgtest.Pool(t, name))
	require.NoError(t, err)
	d := shard.NewDirectory(table, 3)
	_, err = d.Route(ctx, 5)
	require.ErrorIs(t, err, shard.ErrNoShard)

	got := make([][]int, 10)
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for g := range got {
		wg.Go(func() {
			for k := range int64(20) {
				// Half the goroutines try to put each key elsewhere.
				s := int(k) % 3
				if g%2 == 1 {
					s = (s + 1) % 3
				}
				v, err := table.Assign(ctx, k, s)
				if err != nil {
					errs[g] = err
					return
				}
				got[g] = append(got[g], v)
			}
		})
	}
	wg.Wait()
	for g := range got {
		require.NoError(t, errs[g])
		assert.Equal(t, got[0], got[g], "goroutine %d saw the same entries", g)
	}
	for k := range int64(20) {
		s, err := d.Route(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, got[0][k], s)
	}
	moved, err := table.Reassign(ctx, 0, 2, 3)
	require.NoError(t, err)
	assert.Equal(t, 3, moved)
}
