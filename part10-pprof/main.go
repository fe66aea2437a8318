// Command part10-pprof is the runnable companion to Part 10 of the System
// Design Masterclass: pprof served privately, a service with a goroutine leak
// and a heap leak diagnosed automatically from two profiles, GODEBUG=gctrace
// read and GOGC/GOMEMLIMIT shown on one workload, and what each profiler costs,
// measured.
//
//	go run ./part10-pprof                       # every experiment
//	go run ./part10-pprof -mode diagnose        # one experiment
//	go run ./part10-pprof serve                 # the leaky service on 127.0.0.1:8080, pprof on 127.0.0.1:6060, until Ctrl-C
package main

//go:generate go run . -mode gc -replay testdata/gc-runs.txt -chart gc-heap.svg

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
	"github.com/sysdesign-masterclass/golang/part10-pprof/gclab"
	"github.com/sysdesign-masterclass/golang/part10-pprof/leaky"
	"github.com/sysdesign-masterclass/golang/part10-pprof/observe"
)

// modes lists the experiments in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "endpoints", About: "the pprof grid: every endpoint of a loopback-only server, fetched; block and mutex empty until their rates are set", Run: endpointsDemo},
	{Name: "diagnose", About: "the leaky service under load: heap and goroutine profiles diffed over HTTP, the planted functions named; the fixed one: nothing", Run: diagnoseDemo},
	{Name: "gc", About: "one workload in child processes under GOGC and GOMEMLIMIT settings, GODEBUG=gctrace=1 parsed: cycles, GC CPU, heap, pauses", Run: gcDemo},
	{Name: "overhead", About: "one workload's throughput with no profiler, CPU, heap and goroutine scrapes, block and mutex at several rates, a trace", Run: overheadDemo},
}

// options are the parsed flags.
type options struct {
	mode          string
	blockRate     int
	mutexFraction int
	requests      int
	slow          int
	queryBytes    int
	gcAlloc       int
	gcLive        int
	record        string
	replay        string
	chart         string
	overheadTime  time.Duration
	rounds        int

	// serve
	addr, appAddr string
	allowRemote   bool
	metricsEvery  time.Duration
	goroutines    leaky.Goroutines
	heap          leaky.Heap
}

// main becomes gclab's workload when the gc experiment starts this program
// as its child, and is the demo otherwise.
func main() {
	gclab.MaybeChild()
	cli.Main("part10-pprof", run)
}

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, serving, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	if serving {
		return serve(ctx, w, o)
	}
	return modes.Run(ctx, w, o.mode, o)
}

// flags declares the experiments' command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part10-pprof")
	fs.StringVar(&o.mode, "mode", "all", "experiment: "+modes.Help())
	rateFlags(fs, o)
	fs.IntVar(&o.requests, "requests", 2000, "diagnose: requests sent to each service (100..1000000)")
	fs.IntVar(&o.slow, "slow", 100, "diagnose: how many of them time out (0..-requests)")
	fs.IntVar(&o.queryBytes, "query-bytes", 4096, "diagnose: each request's query length; the heap leak keeps it (16..65536)")
	fs.IntVar(&o.gcAlloc, "gc-alloc", 256, "gc: MiB each child allocates (1..65536)")
	fs.IntVar(&o.gcLive, "gc-live", 32, "gc: MiB each child keeps live (2..16384)")
	fs.StringVar(&o.record, "record", "", "gc: also write the runs (their gctrace lines) to this file")
	fs.StringVar(&o.replay, "replay", "", "gc: read the runs from a file -record wrote instead of running them")
	fs.StringVar(&o.chart, "chart", "", "gc: also draw the heap over time (SVG) to this file")
	fs.DurationVar(&o.overheadTime, "overhead-time", 200*time.Millisecond, "overhead: how long each profiler runs per round (10ms..1m)")
	fs.IntVar(&o.rounds, "rounds", 3, "overhead: rounds; each measures every profiler once (1..100)")
	return fs
}

func rateFlags(fs *flag.FlagSet, o *options) {
	fs.IntVar(&o.blockRate, "block-rate", observe.DefaultBlockRate, "runtime.SetBlockProfileRate: one blocking event sampled per N ns blocked; 1 = every event, 0 = off (0..1000000000)")
	fs.IntVar(&o.mutexFraction, "mutex-fraction", observe.DefaultMutexFraction, "runtime.SetMutexProfileFraction: one contention event in N; 0 = off (0..1000000)")
}

// serveFlags declares `serve`'s command line.
func serveFlags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("serve")
	fs.StringVar(&o.addr, "addr", observe.DefaultAddr, "where pprof listens: a loopback address unless -allow-remote")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "let -addr be every interface or a routable address (pprof shows stacks, the command line and more to whoever connects)")
	fs.StringVar(&o.appAddr, "app-addr", "127.0.0.1:8080", "where the search service listens")
	fs.DurationVar(&o.metricsEvery, "metrics-every", 15*time.Second, "print a runtime metrics line this often; 0 = never (0 or 100ms..1h)")
	fs.Func("goroutines", "the search's lookup: leak (the article's leakyHandler) | article-fix (its fixedHandler) | fixed (default leak)", func(v string) error {
		return setGoroutines(&o.goroutines, v)
	})
	fs.Func("heap", "the audit middleware: leak (one Builder for the server's life, the article's case study) | fixed (default leak)", func(v string) error {
		return setHeap(&o.heap, v)
	})
	rateFlags(fs, o)
	return fs
}

// parse reads args into options and checks every value before anything runs.
func parse(args []string) (o options, serving bool, err error) {
	if len(args) > 0 && args[0] == "serve" {
		o.goroutines, o.heap = leaky.GoroutineLeak, leaky.HeapLeak
		fs := serveFlags(&o)
		if err := fs.Parse(args[1:]); err != nil {
			return o, true, err
		}
		if fs.NArg() > 0 {
			return o, true, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
		}
		if !o.allowRemote {
			if err := observe.CheckAddr(o.addr); errors.Is(err, observe.ErrNotLoopback) {
				return o, true, fmt.Errorf("serve: -addr: %w (-allow-remote serves it anyway)", err)
			} else if err != nil {
				return o, true, fmt.Errorf("serve: -addr: %w", err)
			}
		}
		if o.metricsEvery != 0 {
			if err := durationIn("metrics-every", o.metricsEvery, 100*time.Millisecond, time.Hour); err != nil {
				return o, true, fmt.Errorf("%w (or 0: never)", err)
			}
		}
		return o, true, checkRates(o)
	}
	fs := flags(&o)
	if err := fs.Parse(args); err != nil {
		return o, false, err
	}
	if fs.NArg() > 0 {
		return o, false, fmt.Errorf("unexpected argument %q (the only subcommand is serve, and it comes first)", fs.Arg(0))
	}
	return o, false, cmp.Or(
		modes.Check(o.mode),
		checkRates(o),
		cli.InRange("requests", o.requests, 100, 1_000_000),
		cli.InRange("slow", o.slow, 0, o.requests),
		cli.InRange("query-bytes", o.queryBytes, 16, 65536),
		cli.InRange("gc-alloc", o.gcAlloc, 1, 65536),
		cli.InRange("gc-live", o.gcLive, 2, 16384),
		gcFlags(o),
		cli.InRange("rounds", o.rounds, 1, 100),
		durationIn("overhead-time", o.overheadTime, 10*time.Millisecond, time.Minute),
	)
}

func setGoroutines(g *leaky.Goroutines, v string) error {
	for _, c := range []leaky.Goroutines{leaky.GoroutineLeak, leaky.GoroutineArticleFix, leaky.GoroutineFixed} {
		if v == c.String() {
			*g = c
			return nil
		}
	}
	return errors.New("want leak | article-fix | fixed")
}

func setHeap(h *leaky.Heap, v string) error {
	for _, c := range []leaky.Heap{leaky.HeapLeak, leaky.HeapFixed} {
		if v == c.String() {
			*h = c
			return nil
		}
	}
	return errors.New("want leak | fixed")
}

// durationIn returns nil if lo <= d <= hi, else the usage message.
func durationIn(name string, d, lo, hi time.Duration) error {
	if lo <= d && d <= hi {
		return nil
	}
	return fmt.Errorf("-%s %v is out of range %v..%v", name, d, lo, hi)
}

// gcFlags checks that -record, -replay and -chart go with a mode that runs gc.
func gcFlags(o options) error {
	switch {
	case o.mode != "all" && o.mode != "gc" && (o.record != "" || o.replay != "" || o.chart != ""):
		return fmt.Errorf("-record, -replay and -chart belong to -mode gc, not -mode %s", o.mode)
	case o.record != "" && o.replay != "":
		return errors.New("-record and -replay exclude each other: a replay records nothing new")
	}
	return nil
}

func checkRates(o options) error {
	return cmp.Or(
		cli.InRange("block-rate", o.blockRate, 0, 1_000_000_000),
		cli.InRange("mutex-fraction", o.mutexFraction, 0, 1_000_000),
	)
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part10-pprof [-mode M] [-block-rate N] [-mutex-fraction N] [-requests N] [-slow N] [-query-bytes N]\n")
	b.WriteString("                             [-gc-alloc MiB] [-gc-live MiB] [-record FILE | -replay FILE] [-chart FILE] [-overhead-time D] [-rounds N]\n")
	b.WriteString("       go run ./part10-pprof serve [-addr HOST:PORT] [-allow-remote] [-app-addr HOST:PORT] [-goroutines G] [-heap H] [-metrics-every D] [-block-rate N] [-mutex-fraction N]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	cli.WriteFlags(&b, "serve flags", serveFlags(new(options)))
	return b.String()
}
