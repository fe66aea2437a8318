//go:build integration

package fencing

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

func TestPostgres(t *testing.T) {
	stack.Require(t, stack.Postgres)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, stack.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, Migrate(ctx, pool))
	require.NoError(t, Migrate(ctx, pool), "idempotent")
	prefix := fmt.Sprintf("test-%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), `DELETE FROM part06.fenced WHERE resource LIKE $1`, prefix+"%")
		require.NoError(t, err)
	})
	contract(t, NewPostgres(pool), prefix)
}
