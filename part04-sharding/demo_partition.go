package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sysdesign-masterclass/golang/part04-sharding/partition"
)

// partitionDemo creates the article's partitioned tables in part04_catalog
// and shows, from EXPLAIN, which partitions queries read.
func partitionDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== Native partitioning: the article's transaction_log (RANGE, monthly) and user_events (HASH, MODULUS 4), EXPLAINed ==")
	if !o.env.pg {
		fmt.Fprintln(w, "needs PostgreSQL: skipped; `make up SERVICES=postgres` and run again")
		return nil
	}
	p := o.env.catalogPool
	var version string
	if err := p.QueryRow(ctx, `SHOW server_version`).Scan(&version); err != nil {
		return err
	}
	if err := partition.Create(ctx, p, partition.Article); err != nil {
		return err
	}
	fmt.Fprintf(w, "PostgreSQL %s, database %s, the article's DDL as printed\n", version, catalogDB)
	tw := table(w)
	fmt.Fprintln(tw, "WHERE\treads\tpruned when the executor starts")
	for _, q := range []string{
		`transaction_log WHERE created_at >= '2026-06-10' AND created_at < '2026-06-20'`,
		`transaction_log WHERE created_at::date = '2026-06-15'`,
		`transaction_log WHERE created_at >= now() - interval '1 day'`,
		`user_events WHERE user_id = 42`,
		`user_events WHERE user_id IN (1, 2, 3)`,
	} {
		plan, err := partition.Explain(ctx, p, "SELECT * FROM "+q)
		if err != nil {
			return err
		}
		reads := strings.Join(plan.Relations(), ", ")
		if reads == "" {
			reads = "nothing"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\n", q, reads, plan.Removed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	counts, err := partition.Balance(ctx, p, o.rows)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(counts))
	per := make([]int64, len(names))
	for i, n := range names {
		per[i] = counts[n]
	}
	fmt.Fprintf(w, "hash balance: one event each for users 1..%s over %s: %s\n", thousands(o.rows), strings.Join(names, ", "), spread(per))

	const insert = `INSERT INTO transaction_log (id, user_id, amount, status, created_at) VALUES ($1, 7, 10.00, 'ok', $2)`
	_, err = p.Exec(ctx, insert, "7f1b1c52-0000-4000-8000-000000000001", "2026-08-01 00:00:00+00")
	fmt.Fprintf(w, "a row for 2026-08-01: %s\n", pgMessage(err))
	var via [2]string
	for i, month := range []string{"06", "07"} {
		plan, err := partition.Explain(ctx, p, `SELECT * FROM transaction_log WHERE user_id = 7 AND created_at >= '2026-`+month+`-01' AND created_at < '2026-`+month+`-15'`, "enable_seqscan = off")
		if err != nil {
			return err
		}
		via[i] = "a sequential scan"
		for _, s := range plan.Scans {
			if s.Index != "" {
				via[i] = s.Index
			}
		}
	}
	fmt.Fprintf(w, "one user's rows, first half of the month (enable_seqscan off): June through %s, July through %s (the article indexes June only)\n", via[0], via[1])
	for _, at := range []string{"2026-06-05 00:00:00+00", "2026-07-05 00:00:00+00"} {
		if _, err := p.Exec(ctx, insert, "7f1b1c52-0000-4000-8000-000000000002", at); err != nil {
			return err
		}
	}
	var n int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM transaction_log WHERE id = '7f1b1c52-0000-4000-8000-000000000002'`).Scan(&n); err != nil {
		return err
	}
	fmt.Fprintf(w, "PRIMARY KEY (id, created_at): one id inserted at two times: %d rows with that id\n", n)
	_, err = p.Exec(ctx, `CREATE TABLE user_events_4 PARTITION OF user_events FOR VALUES WITH (MODULUS 5, REMAINDER 4)`)
	fmt.Fprintf(w, "a fifth hash partition (MODULUS 5): %s\n", pgMessage(err))

	var gs [2]partition.Growth
	for i, random := range []bool{false, true} {
		if gs[i], err = partition.BTreeGrowth(ctx, p, o.rows, random); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "B-tree, %s bigint keys in order vs scattered: primary key %s vs %s pages (%.2f×), WAL %s vs %s bytes a row\n",
		thousands(o.rows), thousands(gs[0].Leaves), thousands(gs[1].Leaves), float64(gs[1].Leaves)/float64(gs[0].Leaves),
		thousands(gs[0].WALBytes/int64(o.rows)), thousands(gs[1].WALBytes/int64(o.rows)))
	return nil
}

// pgMessage is PostgreSQL's answer to a statement: "ok", or its SQLSTATE and message.
func pgMessage(err error) string {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return "accepted"
	case errors.As(err, &pe):
		return fmt.Sprintf("ERROR %s: %s", pe.Code, pe.Message)
	}
	return err.Error()
}
