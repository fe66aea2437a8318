//go:build integration

package partition

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part04-sharding/internal/pgtest"
)

func db(t *testing.T, ddl string) *pgxpool.Pool {
	t.Helper()
	p := pgtest.Pool(t, pgtest.Names(t, 1)[0])
	require.NoError(t, Create(context.Background(), p, ddl))
	return p
}

// EXPLAIN on the article's tables: a range on created_at reads one month, an
// expression on it reads every month, now() prunes when the executor starts,
// and a user_id reads one hash partition of four.
func TestPartitionPruning(t *testing.T) {
	ctx := context.Background()
	p := db(t, Article)
	for _, tt := range []struct {
		query   string
		scans   []string
		removed int
	}{
		{`SELECT * FROM transaction_log WHERE created_at >= '2026-06-10' AND created_at < '2026-06-20'`, []string{"transaction_log_2026_06"}, 0},
		{`SELECT * FROM transaction_log WHERE created_at >= '2026-06-10' AND created_at < '2026-07-20'`, []string{"transaction_log_2026_06", "transaction_log_2026_07"}, 0},
		{`SELECT * FROM transaction_log WHERE created_at::date = '2026-06-15'`, []string{"transaction_log_2026_06", "transaction_log_2026_07"}, 0},
		{`SELECT * FROM transaction_log WHERE created_at >= '2026-07-01'::timestamptz - interval '1 hour' AND created_at < '2026-07-01'`, []string{"transaction_log_2026_06"}, 0},
		{`SELECT * FROM transaction_log WHERE created_at >= now() - interval '1 day'`, nil, -1}, // pruned at executor start, how many depends on today
		{`SELECT * FROM user_events WHERE user_id = 42`, nil, 0},
		{`SELECT * FROM user_events`, []string{"user_events_0", "user_events_1", "user_events_2", "user_events_3"}, 0},
	} {
		plan, err := Explain(ctx, p, tt.query)
		require.NoError(t, err, tt.query)
		switch {
		case tt.removed < 0:
			assert.Equal(t, 2, plan.Removed+len(plan.Relations()), "%s: every month either pruned at run time or scanned", tt.query)
		case tt.scans == nil:
			assert.Len(t, plan.Relations(), 1, "%s: one hash partition", tt.query)
		default:
			assert.Equal(t, tt.scans, plan.Relations(), tt.query)
			assert.Equal(t, tt.removed, plan.Removed, tt.query)
		}
	}
}

// 100,000 users, one event each, over MODULUS 4: every partition within 2%
// of a quarter.
func TestHashPartitionBalance(t *testing.T) {
	p := db(t, Article)
	counts, err := Balance(context.Background(), p, 100_000)
	require.NoError(t, err)
	require.Len(t, counts, 4)
	for name, n := range counts {
		assert.InDelta(t, 25_000, n, 500, name)
	}
	t.Logf("user_events over MODULUS 4: %v", counts)
}

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const insertTxn = `INSERT INTO transaction_log (id, user_id, amount, status, created_at) VALUES ($1, 7, 10.00, 'ok', $2)`

// The article creates June and July 2026 and no DEFAULT partition: a row for
// 1 August 2026 is refused (23514, "no partition of relation ... found for
// row"). Fixed's DEFAULT partition takes it.
func TestArticleRangePartitionsRefuseAugust(t *testing.T) {
	ctx := context.Background()
	_, err := db(t, Article).Exec(ctx, insertTxn, "7f1b1c52-0000-4000-8000-000000000001", "2026-08-01 00:00:00+00")
	require.Error(t, err)
	assert.Equal(t, "23514", sqlstate(err))
	assert.Contains(t, err.Error(), `no partition of relation "transaction_log" found for row`)

	fixed := db(t, Fixed)
	_, err = fixed.Exec(ctx, insertTxn, "7f1b1c52-0000-4000-8000-000000000001", "2026-08-01 00:00:00+00")
	require.NoError(t, err)
	counts, err := Counts(ctx, fixed, "transaction_log")
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"transaction_log_default": 1}, counts)
}

// The article's user index is created on the June partition only: a query by
// user in July reads the whole month even when sequential scans are
// discouraged (enable_seqscan = off), while June uses the index. Declared on
// the parent (Fixed), every partition has it.
func TestArticleIndexCoversJuneOnly(t *testing.T) {
	ctx := context.Background()
	q := func(month string) string {
		return `SELECT * FROM transaction_log WHERE user_id = 7 AND created_at >= '2026-` + month + `-01' AND created_at < '2026-` + month + `-15'`
	}
	article := db(t, Article)
	june, err := Explain(ctx, article, q("06"), "enable_seqscan = off")
	require.NoError(t, err)
	july, err := Explain(ctx, article, q("07"), "enable_seqscan = off")
	require.NoError(t, err)
	assert.Contains(t, indexes(june), "idx_txn_log_user_2026_06")
	assert.NotContains(t, indexes(july), "idx_txn_log_user_2026_06")
	assert.NotContains(t, july.Scans[0].Node, "Index Only", "July has no index on user_id")

	fixed := db(t, Fixed)
	july, err = Explain(ctx, fixed, q("07"), "enable_seqscan = off")
	require.NoError(t, err)
	assert.Contains(t, indexes(july), "transaction_log_2026_07_user_id_created_at_idx", "the parent's index, created on July too")
}

func indexes(p Plan) []string {
	var out []string
	for _, s := range p.Scans {
		if s.Index != "" {
			out = append(out, s.Index)
		}
	}
	return out
}

// "created_at required in PK for partitioned tables" is true (PRIMARY KEY
// (id) alone is refused, 0A000), and the price is unstated: the key is the
// pair, so the same id is accepted twice with two timestamps.
func TestArticlePrimaryKeyLetsAnIDRepeat(t *testing.T) {
	ctx := context.Background()
	p := db(t, Article)
	const id = "7f1b1c52-0000-4000-8000-000000000002"
	_, err := p.Exec(ctx, insertTxn, id, "2026-06-05 00:00:00+00")
	require.NoError(t, err)
	_, err = p.Exec(ctx, insertTxn, id, "2026-07-05 00:00:00+00")
	require.NoError(t, err, "a second row with the same id")
	var n int
	require.NoError(t, p.QueryRow(ctx, `SELECT count(*) FROM transaction_log WHERE id = $1`, id).Scan(&n))
	assert.Equal(t, 2, n)

	_, err = p.Exec(ctx, `CREATE TABLE t_pk_id (id UUID PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL) PARTITION BY RANGE (created_at)`)
	require.Error(t, err)
	assert.Equal(t, "0A000", sqlstate(err))
	assert.Contains(t, err.Error(), "unique constraint on partitioned table must include all partitioning columns")
}

// MODULUS 4 cannot grow to 5 partitions: every modulus must divide the next
// larger one, so a hash-partitioned table grows by splitting a partition in
// two (MODULUS 8), which rewrites that partition's rows.
func TestArticleHashPartitionsGrowByDoubling(t *testing.T) {
	ctx := context.Background()
	p := db(t, Article)
	_, err := p.Exec(ctx, `CREATE TABLE user_events_4 PARTITION OF user_events FOR VALUES WITH (MODULUS 5, REMAINDER 4)`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "every hash partition modulus must be a factor of the next larger modulus")

	_, err = Balance(ctx, p, 10_000)
	require.NoError(t, err)
	_, err = p.Exec(ctx, `
		ALTER TABLE user_events DETACH PARTITION user_events_0;
		ALTER TABLE user_events_0 RENAME TO user_events_0_old;
		CREATE TABLE user_events_0 PARTITION OF user_events FOR VALUES WITH (MODULUS 8, REMAINDER 0);
		CREATE TABLE user_events_4 PARTITION OF user_events FOR VALUES WITH (MODULUS 8, REMAINDER 4);
		INSERT INTO user_events SELECT * FROM user_events_0_old;
		DROP TABLE user_events_0_old;`)
	require.NoError(t, err, "splitting remainder 0 of 4 into 0 and 4 of 8")
	counts, err := Counts(ctx, p, "user_events")
	require.NoError(t, err)
	assert.Len(t, counts, 5)
	var total int64
	for _, n := range counts {
		total += n
	}
	assert.Equal(t, int64(10_000), total)
	assert.InDelta(t, counts["user_events_1"]/2, counts["user_events_4"], float64(counts["user_events_1"])/10, "the split halves: %v", counts)
}
