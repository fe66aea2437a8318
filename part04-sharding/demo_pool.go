package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pool"
)

// poolSizes are the sweep's pool sizes.
var poolSizes = []int{1, 2, 4, 8, 16, 32, 64}

// poolClients is how many goroutines send queries at once in the sweep.
const poolClients = 64

// poolDemo sweeps pool sizes on both drivers (or reads a recorded sweep with
// -from), sets the article's rule beside the best size, draws the chart with
// -chart, and runs the leak experiment.
func poolDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== Pool size vs throughput and p99: %d goroutines, %s, database/sql (pgx stdlib) and pgxpool ==\n", poolClients, strings.TrimSpace(pool.Query))
	var points []pool.Point
	var maxConns int
	switch {
	case o.from != "":
		f, err := os.Open(o.from)
		if err != nil {
			return err
		}
		comment, ps, err := pool.Read(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", o.from, err)
		}
		points = ps
		fmt.Fprintf(w, "recorded in %s: %s\n", o.from, strings.ReplaceAll(comment, "\n", "; "))
	case !o.env.pg:
		fmt.Fprintln(w, "needs PostgreSQL: skipped; `make up SERVICES=postgres` and run again (or -from pool-sweep.tsv for the recorded run)")
		return nil
	default:
		if err := pool.Table(ctx, o.env.catalogPool, 10_000); err != nil {
			return err
		}
		if err := o.env.catalogPool.QueryRow(ctx, `SELECT current_setting('max_connections')::int`).Scan(&maxConns); err != nil {
			return err
		}
		url, err := pgshard.URL(stack.DatabaseURL(), catalogDB)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "each point: a fresh pool, warmed, then %v of queries\n", o.window)
		points, err = pool.Sweep(ctx, url, []pool.Driver{pool.SQL, pool.PgxPool}, poolSizes, poolClients, o.window, 10_000)
		if err != nil {
			return err
		}
		if o.record != "" {
			f, err := os.Create(o.record)
			if err != nil {
				return err
			}
			comment := fmt.Sprintf("%s, %d CPUs, %s; max_connections %d; load before the run: %s; %d goroutines, %v a point",
				runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), cpuModel(), maxConns, loadAvg(), poolClients, o.window)
			err = pool.Write(f, comment, points)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "recorded: %s\n", o.record)
		}
	}
	tw := table(w)
	fmt.Fprintln(tw, "pool size\tdatabase/sql q/s\tp50\tp99\tpgxpool q/s\tp50\tp99")
	for _, n := range poolSizes {
		row := []string{fmt.Sprint(n)}
		for _, d := range []pool.Driver{pool.SQL, pool.PgxPool} {
			cell := []string{"-", "-", "-"}
			for _, p := range points {
				if p.Driver == d && p.Conns == n {
					cell = []string{thousands(int64(p.QPS())), ms(p.P50), ms(p.P99)}
				}
			}
			row = append(row, cell...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	bs, _ := pool.Best(points, pool.SQL)
	bp, _ := pool.Best(points, pool.PgxPool)
	rule := "max_connections unknown (recorded run)"
	if maxConns > 0 {
		rule = fmt.Sprintf("min(%d × 0.8, %d cores × 2 + 1 spindle) = %d", maxConns, runtime.NumCPU(), pool.Rule(maxConns, runtime.NumCPU(), 1))
	}
	fmt.Fprintf(w, "highest throughput: database/sql at %d connections, pgxpool at %d; the article's rule here: %s; its ProductionConfig: 80\n", bs.Conns, bp.Conns, rule)
	if o.chart != "" {
		f, err := os.Create(o.chart)
		if err != nil {
			return err
		}
		err = pool.WriteChart(f, fmt.Sprintf("Pool size vs queries/s and p99, %d goroutines", poolClients), points)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "chart: %s\n", o.chart)
	}
	if o.from != "" {
		return nil
	}
	return leakDemo(ctx, w, o)
}

// leakDemo runs the article's leak, the fix, a drained handler without
// Close, and a pool too small, each watched through db.Stats().
func leakDemo(ctx context.Context, w io.Writer, o options) error {
	url, err := pgshard.URL(stack.DatabaseURL(), catalogDB)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\n-- the leak signature in db.Stats(): WaitCount at each quarter of 1 s, InUse under load and once idle (requests time out at 200 ms) --")
	tw := table(w)
	fmt.Fprintln(tw, "handler\tpool\tclients\tdone\tWaitCount by quarter\tInUse load / idle\tverdict")
	for _, c := range []struct {
		name             string
		h                pool.Handler
		maxOpen, clients int
	}{
		{"returns without rows.Close() (db.Query)", pool.Leaky, 4, 8},
		{"defer rows.Close()", pool.Fixed, 4, 4},
		{"no rows.Close(), reads every row", pool.DrainedNoClose, 4, 8},
		{"defer rows.Close(), pool too small", pool.Fixed, 2, 16},
	} {
		db, err := sql.Open("pgx", url)
		if err != nil {
			return err
		}
		db.SetMaxOpenConns(c.maxOpen)
		db.SetMaxIdleConns(c.maxOpen)
		e := pool.Run(ctx, db, c.h, c.clients, time.Second, 200*time.Millisecond)
		waits := make([]string, len(e.Waits))
		for i, v := range e.Waits {
			waits[i] = thousands(v)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d / %d\t%s\n", c.name, c.maxOpen, c.clients, thousands(e.Done),
			strings.Join(waits, " → "), e.InUseLoad, e.Idle.InUse, e.Verdict())
	}
	return tw.Flush()
}

// cpuModel is /proc/cpuinfo's model name, for the recorded sweep's header.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "cpu unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "cpu unknown"
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
