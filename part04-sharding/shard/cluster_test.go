package shard_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard/contract"
)

func TestMemoryStoreContract(t *testing.T) {
	contract.Store(t, func(*testing.T) shard.Store { return shard.NewMemory("memory") })
}

func memCluster(t *testing.T, r shard.Router) *shard.Cluster {
	t.Helper()
	stores := make([]shard.Store, r.Shards())
	for i := range stores {
		stores[i] = shard.NewMemory("mem")
	}
	c, err := shard.NewCluster(r, stores...)
	require.NoError(t, err)
	return c
}

// The global top k of a scatter-gather equals one table's ORDER BY … LIMIT k,
// page after page, for every router, page size and tie density.
func TestTopMatchesOneTable(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	for _, r := range []shard.Router{shard.Jump{N: 3}, shard.Modulo{N: 4}, shard.NewKeyRange(3), shard.EvenRange(1, 1_000_000, 3)} {
		for _, scores := range []int{3, 1000} {
			c := memCluster(t, r)
			users := contract.Users(rng, 400, scores)
			require.NoError(t, c.Load(ctx, users))
			oracle := contract.Oracle(users)
			for _, k := range []int{1, 7, 50, 399, 400, 1000} {
				contract.TopMatches(t, c, oracle, k)
			}
		}
	}
}

// A shard whose rows all beat the others' still yields only k rows, and a k
// larger than one shard holds takes the rest from the others.
func TestMergeTakesTheGlobalTop(t *testing.T) {
	a := []shard.User{{ID: 1, Score: 9}, {ID: 2, Score: 8}, {ID: 3, Score: 7}}
	b := []shard.User{{ID: 4, Score: 5}}
	assert.Equal(t, a[:2], shard.Merge([][]shard.User{b, a}, 2))
	assert.Equal(t, append(a[:3:3], b...), shard.Merge([][]shard.User{b, nil, a}, 10))
	ties := [][]shard.User{{{ID: 5, Score: 1}, {ID: 1, Score: 1}}, {{ID: 4, Score: 1}}}
	assert.Equal(t, []int64{5, 4, 1}, ids(shard.Merge(ties, 3)), "ties broken by id, descending")
}

func ids(us []shard.User) []int64 {
	out := make([]int64, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// failing is a shard that is down.
type failing struct{ shard.Store }

func (failing) Top(context.Context, *shard.Cursor, int) ([]shard.User, error) {
	return nil, errors.New("connection refused")
}

func TestTopWithAShardDown(t *testing.T) {
	ctx := context.Background()
	c := memCluster(t, shard.Jump{N: 3})
	users := contract.Users(rand.New(rand.NewPCG(3, 3)), 90, 1000)
	require.NoError(t, c.Load(ctx, users))
	c.Shards[1] = failing{shard.NewMemory("shard-1")}

	_, err := c.Top(ctx, shard.TopOptions{Limit: 10})
	require.Error(t, err, "no silently short answer")
	assert.EqualError(t, err, "shard: top 10: 1 of 3 shards failed: shard 1 (shard-1): top 10: connection refused")
	var se *shard.ShardError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 1, se.Shard)

	page, err := c.Top(ctx, shard.TopOptions{Limit: 10, AllowPartial: true})
	require.NoError(t, err)
	assert.True(t, page.Partial())
	require.Len(t, page.Missing, 1)
	assert.Equal(t, 1, page.Missing[0].Shard)
	assert.Len(t, page.Users, 10, "the other shards' top 10")

	_, err = c.Top(ctx, shard.TopOptions{Limit: 0})
	assert.EqualError(t, err, "shard: top: limit 0 must be positive")
}

func TestClusterNamesTheShardAndKey(t *testing.T) {
	ctx := context.Background()
	r, err := shard.NewRange([]int64{1, 100}, 199)
	require.NoError(t, err)
	c, err := shard.NewCluster(r, shard.NewMemory("s0"), shard.NewMemory("s1"))
	require.NoError(t, err)
	err = c.Put(ctx, shard.User{ID: 500})
	assert.EqualError(t, err, "shard: no shard owns key 500 in range 0:[1..99] 1:[100..199]")
	_, err = c.Get(ctx, 150)
	assert.EqualError(t, err, "shard 1 (s1): get user 150: shard: user not found")
	assert.ErrorIs(t, err, shard.ErrNotFound)
	_, err = shard.NewCluster(shard.Jump{N: 3}, shard.NewMemory("only"))
	assert.EqualError(t, err, "shard: jump hash, 3 shards needs 3 shards, got 1 stores")
}
