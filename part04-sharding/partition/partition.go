// Package partition creates the article's two partitioned tables on
// PostgreSQL for real, reads EXPLAIN to see which partitions a query scans
// (pruning), and measures how evenly hash partitioning spreads rows.
//
// The article's DDL is kept as it is (Article), so its consequences can be
// shown: no partition past July 2026, an index on June only, a primary key
// that lets one id repeat. Fixed is the same tables with the index declared on
// the parent (every partition, present and future, gets it) and a DEFAULT
// partition that catches rows no month covers.
package partition

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Article is the article's DDL for transaction_log (monthly ranges, June and
// July 2026, an index on June only) and user_events (hash, MODULUS 4).
const Article = `
CREATE TABLE transaction_log (
    id         UUID           NOT NULL,
    user_id    BIGINT         NOT NULL,
    amount     NUMERIC(15, 2) NOT NULL,
    status     VARCHAR(50)    NOT NULL,
    created_at TIMESTAMPTZ    NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE transaction_log_2026_06 PARTITION OF transaction_log
    FOR VALUES FROM ('2026-06-01 00:00:00+00') TO ('2026-07-01 00:00:00+00');
CREATE TABLE transaction_log_2026_07 PARTITION OF transaction_log
    FOR VALUES FROM ('2026-07-01 00:00:00+00') TO ('2026-08-01 00:00:00+00');
CREATE INDEX idx_txn_log_user_2026_06 ON transaction_log_2026_06 (user_id, created_at DESC);

CREATE TABLE user_events (
    id          BIGSERIAL,
    user_id     BIGINT NOT NULL,
    event       VARCHAR(100),
    occurred_at TIMESTAMPTZ DEFAULT NOW()
) PARTITION BY HASH (user_id);
CREATE TABLE user_events_0 PARTITION OF user_events FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE user_events_1 PARTITION OF user_events FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE user_events_2 PARTITION OF user_events FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE user_events_3 PARTITION OF user_events FOR VALUES WITH (MODULUS 4, REMAINDER 3);`

// Fixed is Article with two changes: the user index is declared on the
// parent, so PostgreSQL creates it on every partition, the ones attached
// later included; and a DEFAULT partition takes rows outside every month
// instead of failing the insert (a job still has to split new months out of
// it before it grows: pg_partman does).
const Fixed = `
CREATE TABLE transaction_log (
    id         UUID           NOT NULL,
    user_id    BIGINT         NOT NULL,
    amount     NUMERIC(15, 2) NOT NULL,
    status     VARCHAR(50)    NOT NULL,
    created_at TIMESTAMPTZ    NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE transaction_log_2026_06 PARTITION OF transaction_log
    FOR VALUES FROM ('2026-06-01 00:00:00+00') TO ('2026-07-01 00:00:00+00');
CREATE TABLE transaction_log_2026_07 PARTITION OF transaction_log
    FOR VALUES FROM ('2026-07-01 00:00:00+00') TO ('2026-08-01 00:00:00+00');
CREATE TABLE transaction_log_default PARTITION OF transaction_log DEFAULT;
CREATE INDEX idx_txn_log_user ON transaction_log (user_id, created_at DESC);`

// Create runs ddl (Article or Fixed) after dropping the tables it makes.
func Create(ctx context.Context, pool *pgxpool.Pool, ddl string) error {
	if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS transaction_log, user_events`); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("partition: create: %w", err)
	}
	return nil
}

// Plan is what EXPLAIN says a query reads.
type Plan struct {
	Scans   []Scan // every relation scanned, in plan order
	Removed int    // partitions pruned when the executor starts ("Subplans Removed")
}

// Scan is one relation a plan reads and how.
type Scan struct {
	Node     string // "Seq Scan", "Index Scan", "Bitmap Heap Scan", ...
	Relation string
	Index    string // for index scans
}

// Relations returns the relations scanned, sorted, each once.
func (p Plan) Relations() []string {
	var out []string
	for _, s := range p.Scans {
		if s.Relation != "" && !slices.Contains(out, s.Relation) {
			out = append(out, s.Relation)
		}
	}
	slices.Sort(out)
	return out
}

// node is a plan node of EXPLAIN (FORMAT JSON).
type node struct {
	Type     string `json:"Node Type"`
	Relation string `json:"Relation Name"`
	Index    string `json:"Index Name"`
	Removed  int    `json:"Subplans Removed"`
	Plans    []node `json:"Plans"`
}

// ParsePlan reads the output of EXPLAIN (FORMAT JSON).
func ParsePlan(b []byte) (Plan, error) {
	var doc []struct {
		Plan *node `json:"Plan"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return Plan{}, fmt.Errorf("partition: EXPLAIN output: %w", err)
	}
	if len(doc) != 1 || doc[0].Plan == nil {
		return Plan{}, errors.New("partition: EXPLAIN output: want one plan")
	}
	var p Plan
	var walk func(n *node, depth int) error
	walk = func(n *node, depth int) error {
		if depth > 100 {
			return errors.New("partition: EXPLAIN output: plan deeper than 100 nodes")
		}
		p.Removed += n.Removed
		if n.Relation != "" {
			p.Scans = append(p.Scans, Scan{Node: n.Type, Relation: n.Relation, Index: n.Index})
		} else if n.Index != "" { // a Bitmap Index Scan under its heap scan
			p.Scans = append(p.Scans, Scan{Node: n.Type, Index: n.Index})
		}
		for i := range n.Plans {
			if err := walk(&n.Plans[i], depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return p, walk(doc[0].Plan, 0)
}

// Explain returns the plan PostgreSQL makes for query (no ANALYZE: it is not
// run). settings are SET LOCAL statements applied first, in one transaction.
func Explain(ctx context.Context, pool *pgxpool.Pool, query string, settings ...string) (Plan, error) {
	var p Plan
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range settings {
			if _, err := tx.Exec(ctx, "SET LOCAL "+s); err != nil {
				return err
			}
		}
		var out []byte
		if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON, COSTS OFF) "+query).Scan(&out); err != nil {
			return fmt.Errorf("partition: EXPLAIN %s: %w", query, err)
		}
		var err error
		p, err = ParsePlan(out)
		return err
	})
	return p, err
}

// Balance inserts one user_events row for each user id in 1..users and
// returns the rows each partition holds, by partition name.
func Balance(ctx context.Context, pool *pgxpool.Pool, users int) (map[string]int64, error) {
	if _, err := pool.Exec(ctx, `TRUNCATE user_events`); err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `INSERT INTO user_events (user_id, event) SELECT g, 'signup' FROM generate_series(1, $1::bigint) g`, users); err != nil {
		return nil, err
	}
	return Counts(ctx, pool, "user_events")
}

// Counts returns the rows of each partition of table.
func Counts(ctx context.Context, pool *pgxpool.Pool, table string) (map[string]int64, error) {
	rows, err := pool.Query(ctx, `SELECT tableoid::regclass::text, count(*) FROM `+pgx.Identifier{table}.Sanitize()+` GROUP BY 1`)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var name string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil })
	return out, err
}

// Growth is what inserting rows into a B-tree primary key cost.
type Growth struct {
	IndexBytes int64 // the primary key's size after the inserts
	WALBytes   int64 // WAL written by the inserts (the server's, so run it alone)
	Leaves     int64 // leaf pages of the index
}

// BTreeGrowth inserts n rows with keys 1..n in order (random false) or in a
// random order (random true) into a fresh table, one row per statement batch
// of 1,000, and measures the primary key's size and the WAL written.
func BTreeGrowth(ctx context.Context, pool *pgxpool.Pool, n int, random bool) (Growth, error) {
	var g Growth
	if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS btree_growth; CREATE TABLE btree_growth (id BIGINT PRIMARY KEY)`); err != nil {
		return g, err
	}
	order := "g"
	if random {
		order = "random()"
	}
	var start string
	if err := pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&start); err != nil {
		return g, err
	}
	for lo := 1; lo <= n; lo += 1000 {
		hi := min(lo+999, n)
		// Random: the batch's keys spread over the whole key space (a
		// multiplicative permutation of 1..n), each batch in random order.
		key := "g"
		if random {
			key = "(g * 2654435761) % 4294967296"
		}
		if _, err := pool.Exec(ctx, `INSERT INTO btree_growth SELECT `+key+` FROM generate_series($1::bigint, $2::bigint) g ORDER BY `+order, lo, hi); err != nil {
			return g, err
		}
	}
	err := pool.QueryRow(ctx, `SELECT pg_relation_size('btree_growth_pkey'),
		pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::bigint,
		pg_relation_size('btree_growth_pkey') / current_setting('block_size')::bigint`, start).Scan(&g.IndexBytes, &g.WALBytes, &g.Leaves)
	return g, err
}
