// Package pgtest gives a test its own databases on the stack's PostgreSQL,
// dropped when the test ends, so tests that run at once never share a shard.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
)

// Names returns n fresh database names, created on the stack's PostgreSQL
// (which the test requires) and dropped at cleanup: p04_<random>_<i>.
func Names(t testing.TB, n int) []string {
	t.Helper()
	stack.Require(t, stack.Postgres)
	prefix := "p04_" + strings.ToLower(rand.Text()[:8])
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s_%d", prefix, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, pgshard.Provision(ctx, stack.DatabaseURL(), names...))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := pgshard.Drop(ctx, stack.DatabaseURL(), names...); err != nil {
			t.Logf("pgtest: drop %v: %v", names, err)
		}
	})
	return names
}

// Pool opens a pool on database name, closed at cleanup; configure edits its
// config (pgshard.Pool).
func Pool(t testing.TB, name string, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	p, err := pgshard.Pool(context.Background(), stack.DatabaseURL(), name, 8, configure...)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// Stores returns n empty shard stores, each in its own database.
func Stores(t testing.TB, n int) []*pgshard.Store {
	t.Helper()
	out := make([]*pgshard.Store, n)
	for i, name := range Names(t, n) {
		out[i] = pgshard.NewStore(Pool(t, name), name)
		require.NoError(t, out[i].CreateSchema(context.Background()))
	}
	return out
}
