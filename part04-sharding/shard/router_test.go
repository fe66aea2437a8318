package shard

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func route(t *testing.T, r Router, key int64) int {
	t.Helper()
	s, err := r.Route(context.Background(), key)
	require.NoError(t, err)
	return s
}

func TestRangeRoutesByInterval(t *testing.T) {
	r, err := NewRange([]int64{1, 1_000_000, 2_000_000}, 2_999_999)
	require.NoError(t, err)
	for key, want := range map[int64]int{1: 0, 999_999: 0, 1_000_000: 1, 1_999_999: 1, 2_000_000: 2, 2_999_999: 2} {
		assert.Equal(t, want, route(t, r, key), "key %d", key)
	}
	for _, key := range []int64{0, -5, 3_000_000, math.MaxInt64} {
		_, err := r.Route(context.Background(), key)
		require.ErrorIs(t, err, ErrNoShard, "key %d", key)
		assert.Contains(t, err.Error(), "key ", "names the key")
	}
	_, err = r.Route(context.Background(), 3_000_000)
	assert.EqualError(t, err, "shard: no shard owns key 3000000 in range 0:[1..999999] 1:[1000000..1999999] 2:[2000000..2999999]")

	all, err := NewRange([]int64{math.MinInt64, 0}, math.MaxInt64)
	require.NoError(t, err)
	assert.Equal(t, 0, route(t, all, math.MinInt64))
	assert.Equal(t, 1, route(t, all, math.MaxInt64), "end is inclusive")
	assert.Equal(t, "range 0:[-∞..-1] 1:[0..+∞]", all.String())
}

func TestNewRangeRejectsBadBounds(t *testing.T) {
	_, err := NewRange(nil, 10)
	assert.Error(t, err)
	_, err = NewRange([]int64{5, 5}, 10)
	assert.EqualError(t, err, "shard: range bounds must increase: 5 then 5")
	_, err = NewRange([]int64{0, 20}, 10)
	assert.Error(t, err)
}

func TestEvenRange(t *testing.T) {
	r := EvenRange(1, 30, 3)
	assert.Equal(t, "range 0:[1..10] 1:[11..20] 2:[21..30]", r.String())
	r = EvenRange(1, 31, 3)
	assert.Equal(t, "range 0:[1..10] 1:[11..20] 2:[21..31]", r.String(), "the last takes the remainder")
	assert.Panics(t, func() { EvenRange(1, 2, 3) })
	assert.Equal(t, []int64{math.MinInt64, 0}, EvenRange(math.MinInt64, math.MaxInt64, 2).Lower(), "all of int64, no overflow")
	assert.Equal(t, "range 0:[0..2] 1:[3..5] 2:[6..9]", EvenRange(0, 9, 3).String(), "10 ids: 3, 3 and the remainder")
}

// Every router is a pure function of the key: the same shard in any order,
// any process (KeyspaceID is xxhash, not a seeded map hash).
func TestRoutersAreDeterministic(t *testing.T) {
	assert.Equal(t, uint64(0xa2c396223f8bdbdf), KeyspaceID(42), "xxhash64 of 00 00 00 00 00 00 00 2a: a placement on disk depends on it never changing")
	for _, r := range []Router{Jump{N: 3}, Modulo{N: 3}, NewKeyRange(3), EvenRange(0, 1<<20, 3)} {
		first := map[int64]int{}
		for k := range int64(1000) {
			first[k] = route(t, r, k)
		}
		for _, k := range rand.Perm(1000) {
			assert.Equal(t, first[int64(k)], route(t, r, int64(k)), "%s key %d", r, k)
		}
	}
}

// Hashing routers spread sequential ids evenly: each of 3 shards gets a third
// of 300,000 ids within 1%.
func TestHashRoutersSpreadEvenly(t *testing.T) {
	const n = 300_000
	for _, r := range []Router{Jump{N: 3}, Modulo{N: 3}, NewKeyRange(3)} {
		counts := make([]int, 3)
		for k := range int64(n) {
			counts[route(t, r, k+1)]++
		}
		for i, c := range counts {
			assert.InDelta(t, n/3, c, n/3/100, "%s shard %d", r, i)
		}
	}
}

// Going from N to N+1 shards, jump hash moves about 1/(N+1) of the keys, all
// to the new shard; % N moves about N/(N+1); even key ranges move about half
// going 2→3.
func TestMovesWhenAddingAShard(t *testing.T) {
	const keys = 100_000
	for _, tt := range []struct {
		name     string
		from, to Router
		moved    float64 // expected fraction
		onlyNew  bool
	}{
		{"jump 2→3", Jump{N: 2}, Jump{N: 3}, 1.0 / 3, true},
		{"jump 9→10", Jump{N: 9}, Jump{N: 10}, 1.0 / 10, true},
		{"modulo 2→3", Modulo{N: 2}, Modulo{N: 3}, 2.0 / 3, false},
		{"modulo 9→10", Modulo{N: 9}, Modulo{N: 10}, 9.0 / 10, false},
		{"key ranges 2→3", NewKeyRange(2), NewKeyRange(3), 1.0 / 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			moved := 0
			for k := range int64(keys) {
				a, b := route(t, tt.from, k), route(t, tt.to, k)
				if a != b {
					moved++
					if tt.onlyNew {
						require.Equal(t, tt.to.Shards()-1, b, "key %d moved between old shards", k)
					}
				}
			}
			assert.InDelta(t, tt.moved, float64(moved)/keys, 0.01)
		})
	}
}

func TestKeyRangeNamesShardsAsVitess(t *testing.T) {
	assert.Equal(t, "keyspace-id ranges -80 80-", NewKeyRange(2).String())
	assert.Equal(t, "keyspace-id ranges -55 55-aa aa-", NewKeyRange(3).String())
	assert.Equal(t, "keyspace-id ranges -40 40-80 80-c0 c0-", NewKeyRange(4).String())
	assert.Equal(t, uint64(0x5555555555555555), NewKeyRange(3).lower[1], "⌊2^64/3⌋")
}

func TestDirectory(t *testing.T) {
	ctx := context.Background()
	d := NewDirectory(NewMemoryTable(), 2)
	_, err := d.Route(ctx, 7)
	require.ErrorIs(t, err, ErrNoShard)
	assert.EqualError(t, err, "shard: no shard owns key 7 in directory, 2 shards")

	s, err := d.Place(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, route(t, Jump{N: 2}, 7), s, "new keys go where jump hash would")
	assert.Equal(t, s, route(t, d, 7))
	got, err := d.Table().Assign(ctx, 7, 1-s)
	require.NoError(t, err)
	assert.Equal(t, s, got, "a second assign keeps the first entry")

	for k := range int64(100) {
		_, err := d.Place(ctx, k)
		require.NoError(t, err)
	}
	moved, err := d.Table().Reassign(ctx, 0, 2, 10)
	require.NoError(t, err)
	assert.Equal(t, 10, moved)
	_, err = d.Route(ctx, 99)
	if route(t, Jump{N: 2}, 99) == 0 {
		assert.ErrorContains(t, err, "names shard 2, outside 0..1", "a 2-shard directory refuses an entry for shard 2")
	}
	d3 := d.WithShards(3)
	counts := make([]int, 3)
	for k := range int64(100) {
		counts[route(t, d3, k)]++
	}
	assert.Equal(t, 10, counts[2], "exactly the reassigned keys moved")
}

// The article titles its router "Application-Level Shard Router
// (Directory-based)", but GetShardDSN is a switch on id ranges: a range router
// with bounds 1,000,000 and 2,000,000, no table, nothing to look up. Modelled
// as that Range, it shows what a range on sequential ids does: the first
// 999,999 users all share shard 1 (0 here), and once ids pass 2,000,000 every
// sign-up goes to the last shard. No single user can be moved without moving
// a boundary. TestDirectory is the directory the title promises.
func TestArticleDirectoryRouterIsARangeRouter(t *testing.T) {
	article, err := NewRange([]int64{math.MinInt64, 1_000_000, 2_000_000}, math.MaxInt64)
	require.NoError(t, err)
	ctx := context.Background()
	for _, tt := range []struct {
		from, n int64
		shard   int
	}{
		{1, 30_000, 0},          // a young service: everything on one shard
		{2_000_000, 100_000, 2}, // the next 100,000 sign-ups: all on the last
		{-5, 5, 0},              // ids below 1 are routed too, never refused
	} {
		counts := make([]int, 3)
		for k := tt.from; k < tt.from+tt.n; k++ {
			s, err := article.Route(ctx, k)
			require.NoError(t, err)
			counts[s]++
		}
		assert.Equal(t, int(tt.n), counts[tt.shard], "ids %d..%d: all on shard %d", tt.from, tt.from+tt.n-1, tt.shard)
	}
	_, isBatch := Router(article).(BatchRouter)
	assert.False(t, isBatch, "nothing to look up: no table behind it")
}
