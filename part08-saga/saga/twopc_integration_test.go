//go:build integration

package saga

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// The article's 2PC failure, on PostgreSQL's own two-phase commit: a
// participant that voted yes (PREPARE TRANSACTION) and whose coordinator then
// vanished keeps its row locks, beyond its session's end, until someone
// decides COMMIT PREPARED or ROLLBACK PREPARED; every other writer of that row
// waits (here it gives up after lock_timeout). This is what a saga avoids:
// each step commits locally, and undoing is a new transaction.
func TestTwoPhaseCommitBlocksAfterCoordinatorCrash(t *testing.T) {
	stack.Require(t, stack.Postgres)
	ctx := t.Context()
	url := stack.DatabaseURL()
	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer admin.Close(context.Background())
	gid := "part08-" + strings.ToLower(rand.Text()[:8])
	id := gid
	_, err = admin.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS part08;
		CREATE TABLE IF NOT EXISTS part08.twopc_stock (sku text PRIMARY KEY, qty int NOT NULL)`)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `INSERT INTO part08.twopc_stock VALUES ($1, 10)`, id)
	require.NoError(t, err)

	// The participant: phase 1 done, vote yes.
	participant, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = participant.Exec(ctx, `BEGIN`)
	require.NoError(t, err)
	_, err = participant.Exec(ctx, `UPDATE part08.twopc_stock SET qty = qty - 1 WHERE sku = $1`, id)
	require.NoError(t, err)
	_, err = participant.Exec(ctx, `PREPARE TRANSACTION '`+gid+`'`)
	require.NoError(t, err, "the stack runs PostgreSQL with max_prepared_transactions=10")
	// The coordinator crashes: nobody sends phase 2. The session ends too.
	require.NoError(t, participant.Close(ctx))
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `ROLLBACK PREPARED '`+gid+`'`) })

	var n int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1`, gid).Scan(&n))
	assert.Equal(t, 1, n, "the prepared transaction outlives its session")

	other, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer other.Close(context.Background())
	_, err = other.Exec(ctx, `SET lock_timeout = '1s'`)
	require.NoError(t, err)
	_, err = other.Exec(ctx, `UPDATE part08.twopc_stock SET qty = qty - 1 WHERE sku = $1`, id)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%v", err)
	assert.Equal(t, "55P03", pgErr.Code, "lock_not_available: the row is still locked by the orphaned prepared transaction")

	_, err = admin.Exec(ctx, `ROLLBACK PREPARED '`+gid+`'`) // a human (or a recovery tool) decides
	require.NoError(t, err)
	_, err = other.Exec(ctx, `UPDATE part08.twopc_stock SET qty = qty - 1 WHERE sku = $1`, id)
	assert.NoError(t, err, "free once phase 2 is decided")
}
