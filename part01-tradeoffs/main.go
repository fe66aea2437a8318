// Command part01-tradeoffs is the runnable companion to Part 1 of the System
// Design Masterclass: the 3D trade-off and availability arithmetic computed,
// an SLI measured, a CAP partition and Cassandra's consistency levels you can
// watch, the PACELC table, and the article's Clean Architecture users API.
//
//	go run ./part01-tradeoffs                      # every scenario
//	go run ./part01-tradeoffs -mode partition      # one scenario
//	go run ./part01-tradeoffs -serve :8080         # serve the users API until Ctrl-C
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

// modes lists the scenarios in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "tradeoff", About: "the 3D trade-off table, computed: nodes for a 500k RPS peak at each availability target", Run: tradeoffDemo},
	{Name: "availability", About: "composite availability, downtime, error budget, a nested multi-region tree", Run: availabilityDemo},
	{Name: "partition", About: "Gilbert & Lynch's partition in CP and AP mode; Cassandra's ONE/QUORUM/ALL measured", Run: partitionDemo},
	{Name: "pacelc", About: "PACELC: the else branch's latency per consistency level, each label measured from its mechanism", Run: pacelcDemo},
	{Name: "users", About: "the Clean Architecture users API over HTTP, and an SLI measured against the SLO", Run: usersDemo},
}

// options are the parsed flags.
type options struct {
	mode, store, serve string
	requests, ops      int
	sliWindow          time.Duration
}

func main() { cli.Main("part01-tradeoffs", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	if o.serve != "" {
		return serveAPI(ctx, w, o)
	}
	return modes.Run(ctx, w, o.mode, o)
}

// flags declares the command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part01-tradeoffs")
	fs.StringVar(&o.mode, "mode", "all", "scenario: "+modes.Help())
	fs.StringVar(&o.store, "store", "auto", "users storage: auto (PostgreSQL if reachable, else in-memory) | postgres | memory")
	fs.StringVar(&o.serve, "serve", "", "serve the users API on this address (e.g. :8080) until Ctrl-C, instead of the scenarios")
	fs.IntVar(&o.requests, "requests", 2000, "requests sent to the users API to measure its latency SLI (1..1000000)")
	fs.IntVar(&o.ops, "ops", 20000, "operations per consistency-level run in -mode partition and -mode pacelc (1..1000000)")
	fs.DurationVar(&o.sliWindow, "sli-window", time.Minute, "window of the latency SLI (the article's: p99 over 1 minute), 1ms..24h")
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var serveAndMode, window error
	if o.serve != "" && set["mode"] {
		serveAndMode = errors.New("-serve runs the API instead of the scenarios; drop -mode")
	}
	if o.sliWindow < time.Millisecond || o.sliWindow > 24*time.Hour {
		window = fmt.Errorf("-sli-window %v is out of range 1ms..24h", o.sliWindow)
	}
	return o, cmp.Or( // the first of these that fails
		modes.Check(o.mode),
		cli.OneOf("store", o.store, "auto", "postgres", "memory"),
		serveAndMode,
		cli.InRange("requests", o.requests, 1, 1_000_000),
		cli.InRange("ops", o.ops, 1, 1_000_000),
		window,
	)
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part01-tradeoffs [-mode M] [-store S] [-requests N] [-ops N] [-sli-window D]\n")
	b.WriteString("       go run ./part01-tradeoffs -serve ADDR [-store S]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	return b.String()
}
