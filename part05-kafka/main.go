// Command part05-kafka is the runnable companion to Part 5 of the System
// Design Masterclass: an order pipeline with a bounded worker pool and its
// backpressure, per-key ordering, exactly-once effects in PostgreSQL on the
// stack's Kafka (an in-process pipeline when Kafka is not running), the
// Shopee flash-sale arithmetic, Kafka's sparse offset index read from a real
// segment, and sendfile against a user-space copy.
//
//	go run ./part05-kafka                     # every experiment
//	go run ./part05-kafka -mode pipeline      # one experiment
//	go run ./part05-kafka -stack off          # the in-process pipeline even when Kafka is up
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sysdesign-masterclass/golang/internal/cli"
)

// modes lists the experiments in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "pipeline", About: "orders produced, consumed per partition, applied exactly once: msgs/s, p50/p99 end-to-end, lag (Kafka + PostgreSQL when up, else in-process)", Run: pipelineDemo},
	{Name: "backpressure", About: "a fast producer into a slow pool: blocked time and queue depth, and the article's sleep-and-retry loop beside a blocking send", Run: backpressureDemo},
	{Name: "ordering", About: "one order's events through a plain pool (out of order) and through per-key lanes (in order)", Run: orderingDemo},
	{Name: "shopee", About: "the case study's numbers: backlog growth, buffer fill, drain time, Little's law", Run: shopeeDemo},
}

// options are the parsed flags.
type options struct {
	mode, stack               string
	messages, orders, workers int
	partitions, buffer        int
}

func main() { cli.Main("part05-kafka", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	return modes.Run(ctx, w, o.mode, o)
}

// flags declares the command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part05-kafka")
	fs.StringVar(&o.mode, "mode", "all", "experiment: "+modes.Help())
	fs.StringVar(&o.stack, "stack", "auto", "auto: the stack's Kafka and PostgreSQL when both answer, else in-process | off: in-process only")
	fs.IntVar(&o.messages, "messages", 20_000, "pipeline, ordering: events produced (100..1000000)")
	fs.IntVar(&o.orders, "orders", 500, "pipeline, ordering: orders the events belong to, the message keys (1..100000)")
	fs.IntVar(&o.partitions, "partitions", 4, "pipeline: partitions of the topic (1..64)")
	fs.IntVar(&o.workers, "workers", 8, "backpressure, ordering: pool workers or lanes (1..1024)")
	fs.IntVar(&o.buffer, "buffer", 100, "backpressure, ordering, pipeline (in-process): pool buffer (0..100000)")
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
	return o, cmp.Or( // the first of these that fails
		modes.Check(o.mode),
		cli.OneOf("stack", o.stack, "auto", "off"),
		cli.InRange("messages", o.messages, 100, 1_000_000),
		cli.InRange("orders", o.orders, 1, 100_000),
		cli.InRange("partitions", o.partitions, 1, 64),
		cli.InRange("workers", o.workers, 1, 1024),
		cli.InRange("buffer", o.buffer, 0, 100_000),
	)
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part05-kafka [-mode M] [-stack auto|off] [-messages N] [-orders N] [-partitions N] [-workers N] [-buffer N]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	return b.String()
}
