package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pool"
)

// memoryDemo measures what one backend of this PostgreSQL takes: a fresh one,
// the same after a query, and the average over 20.
func memoryDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== Memory of one PostgreSQL backend, beside the article's \"5–10 MB\" per connection ==")
	if !o.env.pg {
		fmt.Fprintln(w, "needs PostgreSQL: skipped; `make up SERVICES=postgres` and run again")
		return nil
	}
	url, err := pgshard.URL(stack.DatabaseURL(), catalogDB)
	if err != nil {
		return err
	}
	const n = 20
	conns := make([]*pgx.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close(context.Background())
		}
	}()
	for range n {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	fresh, err := pool.Backend(ctx, conns[0])
	if err != nil {
		return err
	}
	if !fresh.Visible {
		fmt.Fprintf(w, "backend pid %d is not a process of this machine (PostgreSQL in a container?): /proc cannot be read; memory contexts %s kB\n", fresh.PID, thousands(fresh.Contexts>>10))
		return nil
	}
	var workMem string
	if err := conns[0].QueryRow(ctx, `SHOW work_mem`).Scan(&workMem); err != nil {
		return err
	}
	if _, err := conns[0].Exec(ctx, `SELECT count(*) FROM (SELECT g FROM generate_series(1, 100000) g ORDER BY g DESC) s`); err != nil {
		return err
	}
	worked, err := pool.Backend(ctx, conns[0])
	if err != nil {
		return err
	}
	var sum pool.Memory
	for _, c := range conns {
		m, err := pool.Backend(ctx, c)
		if err != nil {
			return err
		}
		sum.RSS += m.RSS
		sum.PSS += m.PSS
		sum.USS += m.USS
		sum.Contexts += m.Contexts
	}
	avg := pool.Memory{RSS: sum.RSS / n, PSS: sum.PSS / n, USS: sum.USS / n, Contexts: sum.Contexts / n}
	tw := table(w)
	fmt.Fprintln(tw, "backend\tRSS\tPSS\tprivate (USS)\tmemory contexts")
	kb := func(b int64) string { return thousands(b>>10) + " kB" }
	for _, r := range []struct {
		name string
		m    pool.Memory
	}{
		{"fresh, idle", fresh},
		{"the same, after sorting 100,000 rows (work_mem " + workMem + ")", worked},
		{fmt.Sprintf("average of %d idle", n), avg},
	} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, kb(r.m.RSS), kb(r.m.PSS), kb(r.m.USS), kb(r.m.Contexts))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "RSS counts shared memory (shared_buffers, libraries) each backend has touched; private memory is what one more connection costs:\n")
	fmt.Fprintf(w, "500 connections × %s private = %s MB, against the article's \"500 connections × 10 MB = 5 GB\"\n", kb(avg.USS), thousands(500*avg.USS>>20))
	return nil
}
