// Command part04-sharding is the runnable companion to Part 4 of the System
// Design Masterclass: users routed by range, hash and directory routers over
// real PostgreSQL shards, a scatter-gather top-k checked against one table, the
// rows each strategy moves going from 2 to 3 shards, and the same move made
// online while a writer keeps writing.
//
//	go run ./part04-sharding                    # every experiment
//	go run ./part04-sharding -mode reshard      # one experiment
//	go run ./part04-sharding -stack off         # in-memory shards even when PostgreSQL is up
//
//go:generate go run . -mode pool -from pool-sweep.tsv -chart pool-sweep.svg
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/cli"
)

// modes lists the experiments in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "routers", About: "where users land under the article's router, range, jump hash, hash % N, key ranges and a directory; where new sign-ups go", Run: routersDemo},
	{Name: "scatter", About: "top k users by score across the shards, merged, against one table's ORDER BY … LIMIT k; a shard down", Run: scatterDemo},
	{Name: "reshard", About: "2 → 3 shards: rows each strategy moves, beside the fewest any balanced layout needs", Run: reshardDemo},
	{Name: "partition", About: "the article's RANGE and HASH partitioned tables created for real: EXPLAIN's pruning, hash balance, what its DDL refuses", Run: partitionDemo},
	{Name: "pool", About: "throughput and p99 per pool size, database/sql and pgxpool, beside the article's sizing rule; the rows.Close() leak in Stats()", Run: poolDemo},
	{Name: "memory", About: "one backend's memory from /proc and pg_backend_memory_contexts, beside the article's 5–10 MB", Run: memoryDemo},
	{Name: "percolator", About: "TiDB's two-phase commit in memory: the coordinator killed at every step, readers rolling back or forward; SI anomalies", Run: percolatorDemo},
	{Name: "online", About: "2 → 3 shards while a writer writes (PostgreSQL): backfill, catch-up, freeze and cutover; rows lost, duplicated, freeze ms", Run: onlineDemo},
}

// options are the parsed flags, and the shards the experiments share.
type options struct {
	mode, stack         string
	rows, k             int
	window              time.Duration
	from, record, chart string
	env                 *env // opened by run once the flags are checked
}

func main() { cli.Main("part04-sharding", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	e, err := openEnv(ctx, o.stack == "auto" && o.from == "")
	if err != nil {
		return fmt.Errorf("setup: %w (scripts/stack status shows what is running)", err)
	}
	defer e.close()
	fmt.Fprintln(w, e.describe)
	o.env = e
	for _, m := range modes { // modes.Run, with a blank line before each
		if o.mode == "all" || o.mode == m.Name {
			fmt.Fprintln(w)
			if err := m.Run(ctx, w, o); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
	}
	return nil
}

// flags declares the command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part04-sharding")
	fs.StringVar(&o.mode, "mode", "all", "experiment: "+modes.Help())
	fs.StringVar(&o.stack, "stack", "auto", "auto: PostgreSQL (DATABASE_URL) when it answers, else in-memory shards | off: in-memory shards only")
	fs.IntVar(&o.rows, "rows", 30_000, "users loaded into the shards (300..1000000)")
	fs.IntVar(&o.k, "k", 10, "scatter: users per page of the top-k query (1..1000)")
	fs.DurationVar(&o.window, "window", 500*time.Millisecond, "pool: how long each pool size is measured (100ms..1m)")
	fs.StringVar(&o.record, "record", "", "pool: also write the measured sweep to this file (tab-separated)")
	fs.StringVar(&o.from, "from", "", "pool: show a recorded sweep instead of measuring (no database needed)")
	fs.StringVar(&o.chart, "chart", "", "pool: also draw the sweep as SVG to this file")
	return fs
}

// parse reads args into options and checks every value before anything runs.
func parse(args []string) (options, error) {
	var o options
	fs := flags(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (flags go before it, and there are no positional arguments)", fs.Arg(0))
	}
	if err := cmp.Or( // the first of these that fails
		modes.Check(o.mode),
		cli.OneOf("stack", o.stack, "auto", "off"),
		cli.InRange("rows", o.rows, 300, 1_000_000),
		cli.InRange("k", o.k, 1, 1000),
	); err != nil {
		return o, err
	}
	switch {
	case o.window < 100*time.Millisecond || o.window > time.Minute:
		return o, fmt.Errorf("-window %v is out of range 100ms..1m", o.window)
	case (o.from != "" || o.record != "" || o.chart != "") && o.mode != "pool":
		return o, errors.New("-from, -record and -chart belong to the pool sweep; use them with -mode pool")
	case o.from != "" && o.record != "":
		return o, errors.New("-from shows a recorded sweep and -record records a measured one: pick one")
	}
	return o, nil
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part04-sharding [-mode M] [-stack auto|off] [-rows N] [-k N] [-window D]\n")
	b.WriteString("       go run ./part04-sharding -mode pool [-record FILE | -from FILE] [-chart FILE]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	return b.String()
}
