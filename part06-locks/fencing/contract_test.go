package fencing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// contract is the behaviour every Store must have; resource names start with
// prefix so runs against a shared database never meet.
func contract(t *testing.T, s Store, prefix string) {
	ctx := context.Background()
	t.Run("first write creates, higher and equal tokens write, lower is stale", func(t *testing.T) {
		res := prefix + "account"
		_, ok, err := s.Read(ctx, res)
		require.NoError(t, err)
		require.False(t, ok, "never written")
		require.NoError(t, s.Write(ctx, res, 33, "A"))
		require.NoError(t, s.Write(ctx, res, 34, "B"))
		require.NoError(t, s.Write(ctx, res, 34, "B again"), "the same holder writes twice")
		err = s.Write(ctx, res, 33, "A, after its pause")
		require.ErrorIs(t, err, ErrStale)
		var stale *StaleError
		require.ErrorAs(t, err, &stale)
		assert.Equal(t, StaleError{Resource: res, Token: 33, Latest: 34}, *stale)
		assert.EqualError(t, err, fmt.Sprintf("fencing: token 33 for %q is stale: token 34 has written", res))
		rec, ok, err := s.Read(ctx, res)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, Record{Value: "B again", Token: 34}, rec, "the stale write changed nothing")
	})
	t.Run("tokens no lock hands out are refused", func(t *testing.T) {
		for _, token := range []int64{0, -1} {
			err := s.Write(ctx, prefix+"bad", token, "x")
			assert.ErrorContains(t, err, "is not a lock's token")
			assert.NotErrorIs(t, err, ErrStale)
		}
		_, ok, err := s.Read(ctx, prefix+"bad")
		require.NoError(t, err)
		assert.False(t, ok)
	})
	t.Run("concurrent writers: the highest token wins, whatever the order", func(t *testing.T) {
		res := prefix + "race"
		tokens := rand.Perm(200)
		var wg sync.WaitGroup
		for _, tok := range tokens {
			wg.Go(func() {
				err := s.Write(ctx, res, int64(tok+1), fmt.Sprint(tok+1))
				if err != nil {
					assert.ErrorIs(t, err, ErrStale)
				}
			})
		}
		wg.Wait()
		rec, ok, err := s.Read(ctx, res)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, Record{Value: "200", Token: 200}, rec)
	})
}

func TestMemory(t *testing.T) { contract(t, NewMemory(), "") }

func TestStaleErrorIs(t *testing.T) {
	var err error = &StaleError{Resource: "r", Token: 1, Latest: 2}
	assert.ErrorIs(t, fmt.Errorf("wrapped: %w", err), ErrStale)
	assert.NotErrorIs(t, err, context.Canceled)
}
