package reshard

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

func TestMinimum(t *testing.T) {
	for _, tt := range []struct {
		counts []int64
		n      int
		want   int64
	}{
		{[]int64{50, 50}, 3, 33},         // targets 34 33 33: keep 34 + 33, the new shard gets 33
		{[]int64{60, 40}, 3, 33},         // keep 34 of 60 and 33 of 40
		{[]int64{100, 0}, 2, 50},         //
		{[]int64{30, 30, 30}, 3, 0},      // already balanced
		{[]int64{3000, 3000}, 3, 2000},   // a third must land on the new shard
		{[]int64{10, 10, 10, 10}, 2, 20}, // shrinking: two shards empty out
	} {
		assert.Equal(t, tt.want, Minimum(tt.counts, tt.n), "%v → %d", tt.counts, tt.n)
	}
}

func users(n int) []shard.User {
	out := make([]shard.User, n)
	for i := range out {
		out[i] = shard.User{ID: int64(i + 1), Name: "u", Score: int64(i % 97)}
	}
	return out
}

// Offline moves each row to the shard the new router names, counts what it
// moved, and loses nothing.
func TestOfflineMovesEveryRowToItsNewShard(t *testing.T) {
	ctx := context.Background()
	const n = 9_000
	dir := shard.NewDirectory(shard.NewMemoryTable(), 2)
	for _, tt := range []struct {
		name     string
		from, to shard.Router
		prepare  func(t *testing.T, counts []int64)
		lo, hi   float64 // moved fraction
	}{
		{"range re-split", shard.EvenRange(1, n, 2), shard.EvenRange(1, n, 3), nil, 0.5, 0.5},
		{"jump", shard.Jump{N: 2}, shard.Jump{N: 3}, nil, 0.32, 0.345},
		{"modulo", shard.Modulo{N: 2}, shard.Modulo{N: 3}, nil, 0.655, 0.68},
		{"key ranges", shard.NewKeyRange(2), shard.NewKeyRange(3), nil, 0.49, 0.51},
		{"directory", dir, dir.WithShards(3), func(t *testing.T, counts []int64) {
			for s, c := range counts {
				_, err := dir.Table().Reassign(ctx, s, 2, int(c-n/3))
				require.NoError(t, err)
			}
		}, 1.0 / 3, 1.0 / 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stores := []shard.Store{shard.NewMemory("0"), shard.NewMemory("1"), shard.NewMemory("2")}
			c, err := shard.NewCluster(tt.from, stores...)
			require.NoError(t, err)
			if d, ok := tt.from.(*shard.Directory); ok {
				for _, u := range users(n) {
					_, err := d.Place(ctx, u.ID)
					require.NoError(t, err)
				}
			}
			require.NoError(t, c.Load(ctx, users(n)))
			before, err := c.Counts(ctx)
			require.NoError(t, err)
			if tt.prepare != nil {
				tt.prepare(t, before)
			}
			m, err := Offline(ctx, stores, tt.to, 1000)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, m.Moved, Minimum(before, 3), "never below the minimum")
			assert.InDelta(t, (tt.lo+tt.hi)/2, float64(m.Moved)/n, (tt.hi-tt.lo)/2+0.0001)
			after, err := c.Counts(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(n), after[0]+after[1]+after[2], "nothing lost or duplicated")
			for s, st := range stores {
				rows, err := st.Scan(ctx, -1, n)
				require.NoError(t, err)
				for _, u := range rows {
					got, err := tt.to.Route(ctx, u.ID)
					require.NoError(t, err)
					require.Equal(t, s, got, "user %d", u.ID)
				}
			}
		})
	}
}
