// Package contract is the suite every shard.Store passes, memory and
// PostgreSQL alike, and the scatter-gather check against a one-table oracle.
package contract

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// Store runs the suite on the empty stores open returns (a fresh one per call).
func Store(t *testing.T, open func(t *testing.T) shard.Store) {
	ctx := context.Background()
	t.Run("put get delete", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Put(ctx, shard.User{ID: 1, Name: "a", Score: 10}, shard.User{ID: 2, Name: "b", Score: 20}))
		u, err := s.Get(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, shard.User{ID: 1, Name: "a", Score: 10}, u)
		require.NoError(t, s.Put(ctx, shard.User{ID: 1, Name: "a2", Score: 11}), "put replaces")
		u, err = s.Get(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, shard.User{ID: 1, Name: "a2", Score: 11}, u)
		require.NoError(t, s.Delete(ctx, 1, 99), "a missing id is not an error")
		_, err = s.Get(ctx, 1)
		assert.ErrorIs(t, err, shard.ErrNotFound)
		n, err := s.Count(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
		require.NoError(t, s.Put(ctx), "an empty put")
		require.NoError(t, s.Delete(ctx), "an empty delete")
	})
	t.Run("one put naming an id twice", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Put(ctx, shard.User{ID: 7, Name: "first", Score: 1}, shard.User{ID: 8, Name: "b", Score: 2},
			shard.User{ID: 7, Name: "last", Score: 3}), "each user in turn replaces the one before")
		u, err := s.Get(ctx, 7)
		require.NoError(t, err)
		assert.Equal(t, shard.User{ID: 7, Name: "last", Score: 3}, u, "the last one wins")
		n, err := s.Count(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
	})
	t.Run("top and scan pages", func(t *testing.T) {
		s := open(t)
		users := Users(rand.New(rand.NewPCG(1, 2)), 500, 20) // many ties on score
		require.NoError(t, s.Put(ctx, users...))
		want := Oracle(users)
		var got []shard.User
		var after *shard.Cursor
		for {
			page, err := s.Top(ctx, after, 37)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			last := page[len(page)-1]
			after = &shard.Cursor{Score: last.Score, ID: last.ID}
		}
		assert.Equal(t, want, got, "pages of Top, joined, are every row in order")
		var scanned []int64
		var from int64 = -1 << 63
		for {
			page, err := s.Scan(ctx, from, 64)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			for _, u := range page {
				scanned = append(scanned, u.ID)
			}
			from = page[len(page)-1].ID
		}
		assert.Len(t, scanned, len(users))
		assert.True(t, slices.IsSorted(scanned))
	})
}

// Users returns n users with distinct random ids and scores in [0, scores).
func Users(r *rand.Rand, n, scores int) []shard.User {
	seen := map[int64]bool{}
	out := make([]shard.User, 0, n)
	for len(out) < n {
		id := r.Int64N(1_000_000) + 1
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, shard.User{ID: id, Name: fmt.Sprint("user-", id), Score: r.Int64N(int64(scores))})
	}
	return out
}

// Oracle sorts users in Top's order, as one table would return them.
func Oracle(users []shard.User) []shard.User {
	s := slices.Clone(users)
	slices.SortFunc(s, func(a, b shard.User) int {
		if shard.Before(a, b) {
			return -1
		}
		return 1
	})
	return s
}

// TopMatches pages through c.Top with page size k and asserts every page is
// the next k rows of oracle (the rows of one table, in Top's order).
func TopMatches(t *testing.T, c *shard.Cluster, oracle []shard.User, k int) {
	t.Helper()
	var after *shard.Cursor
	for off := 0; ; off += k {
		page, err := c.Top(context.Background(), shard.TopOptions{Limit: k, After: after})
		require.NoError(t, err)
		want := oracle[min(off, len(oracle)):min(off+k, len(oracle))]
		require.Equal(t, want, slices.Clip(page.Users), "page at offset %d, k %d", off, k)
		if page.Next == nil {
			require.Less(t, len(page.Users), k)
			return
		}
		after = page.Next
	}
}
