//go:build integration

package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/payments"
)

func TestPostgresRepo(t *testing.T) {
	stack.Require(t, stack.Postgres)
	p, err := pgxpool.New(t.Context(), stack.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	require.NoError(t, payments.Migrate(t.Context(), p))
	tenant := fmt.Sprintf("test%d", time.Now().UnixNano())
	t.Cleanup(func() {
		_, err := p.Exec(context.Background(), `DELETE FROM part07.payments WHERE tenant LIKE $1`, tenant+"%")
		assert.NoError(t, err, "cleanup")
	})
	repoSuite(t, payments.NewPostgres(p), tenant)
}
