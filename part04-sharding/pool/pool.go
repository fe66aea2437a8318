// Package pool measures connection pools against PostgreSQL: throughput and
// p99 per pool size for database/sql (on pgx's stdlib driver) and pgxpool,
// the article's sizing rule beside the best size measured, the leak signature
// in Stats() told apart from a pool that is merely too small, and the memory
// one backend really takes.
package pool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Rule is the article's pool size: min(max_connections × 0.8, cores × 2 +
// spindles), the cores being the database server's.
func Rule(maxConnections, cores, spindles int) int {
	return min(maxConnections*8/10, cores*2+spindles)
}

// Driver is how a pool is reached: database/sql over pgx's stdlib driver, or pgxpool.
type Driver string

// The two drivers.
const (
	SQL     Driver = "database/sql"
	PgxPool Driver = "pgxpool"
)

// Query is the sweep's statement: an index range scan summing 200 rows, a
// small OLTP read whose cost is on the server.
const Query = `SELECT sum(score) FROM users WHERE id BETWEEN $1 AND $1 + 199`

// Table fills users with n rows for Query.
func Table(ctx context.Context, p *pgxpool.Pool, n int) error {
	_, err := p.Exec(ctx, `CREATE TABLE IF NOT EXISTS users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score BIGINT NOT NULL);
		TRUNCATE users`)
	if err != nil {
		return err
	}
	if _, err = p.Exec(ctx, `INSERT INTO users SELECT g, 'u' || g, g % 1000 FROM generate_series(1, $1::bigint) g`, n); err != nil {
		return err
	}
	_, err = p.Exec(ctx, `ANALYZE users`)
	return err
}

// Point is one pool size's measurement.
type Point struct {
	Driver  Driver
	Conns   int           // MaxOpenConns / MaxConns
	Queries int64         // completed in the window
	Window  time.Duration // how long the clients ran
	P50     time.Duration // per query, waiting for a connection included
	P99     time.Duration
}

// QPS is queries per second.
func (p Point) QPS() float64 { return float64(p.Queries) / p.Window.Seconds() }

// Sweep runs clients goroutines issuing Query for window on a pool of each
// size, for each driver, against the database at url, and returns a point per
// (driver, size).
func Sweep(ctx context.Context, url string, drivers []Driver, sizes []int, clients int, window time.Duration, rows int) ([]Point, error) {
	var out []Point
	for _, d := range drivers {
		for _, n := range sizes {
			do, closeFn, err := open(ctx, d, url, n)
			if err != nil {
				return out, err
			}
			p, err := measure(ctx, do, clients, window, rows)
			closeFn()
			if err != nil {
				return out, fmt.Errorf("pool: %s with %d connections: %w", d, n, err)
			}
			p.Driver, p.Conns = d, n
			out = append(out, p)
		}
	}
	return out, nil
}

// open returns one query's function on a fresh pool of n connections, warmed up.
func open(ctx context.Context, d Driver, url string, n int) (func(context.Context, int64) error, func(), error) {
	switch d {
	case SQL:
		db, err := sql.Open("pgx", url)
		if err != nil {
			return nil, nil, err
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		do := func(ctx context.Context, id int64) error {
			var s sql.NullInt64
			return db.QueryRowContext(ctx, Query, id).Scan(&s)
		}
		return do, func() { _ = db.Close() }, warm(ctx, do, n)
	case PgxPool:
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, nil, err
		}
		cfg.MaxConns, cfg.MinConns = int32(n), int32(n)
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		do := func(ctx context.Context, id int64) error {
			var s *int64
			return p.QueryRow(ctx, Query, id).Scan(&s)
		}
		return do, p.Close, warm(ctx, do, n)
	}
	return nil, nil, fmt.Errorf("pool: unknown driver %q", d)
}

// warm opens every connection (n queries at once) so the window measures
// queries, not dials.
func warm(ctx context.Context, do func(context.Context, int64) error, n int) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = do(ctx, 1) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func measure(ctx context.Context, do func(context.Context, int64) error, clients int, window time.Duration, rows int) (Point, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make([][]time.Duration, clients)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(window)
	for c := range clients {
		wg.Go(func() {
			id := int64(c*7919) % int64(max(rows-200, 1))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := do(ctx, id+1); err != nil {
					failed.CompareAndSwap(nil, &err)
					cancel()
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
				id = (id + 1000) % int64(max(rows-200, 1))
			}
		})
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return Point{}, *e
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return Point{Queries: int64(len(all)), Window: time.Since(start), P50: Quantile(all, 0.5), P99: Quantile(all, 0.99)}, nil
}

// Quantile is the nearest-rank q-quantile of sorted samples.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Best returns driver d's point with the highest throughput.
func Best(points []Point, d Driver) (Point, bool) {
	var best Point
	found := false
	for _, p := range points {
		if p.Driver == d && (!found || p.QPS() > best.QPS()) {
			best, found = p, true
		}
	}
	return best, found
}
