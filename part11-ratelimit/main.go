// Command part11-ratelimit is the runnable companion to Part 11 of the System
// Design Masterclass: a spoofed X-Forwarded-For against a naive and a trusted
// client-IP rule, each limiter's accuracy at window edges, memory per key in
// process and in Redis, hash slots and CROSSSLOT on Redis Cluster, and lock
// contention in a keyed limiter; `serve` runs GET /api/hello behind the
// middleware.
//
//	go run ./part11-ratelimit                        # every scenario
//	go run ./part11-ratelimit -mode accuracy         # one scenario
//	go run ./part11-ratelimit serve -addr 127.0.0.1:8081 -algo gcra -limit 5 -window 10s
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

// modes lists the scenarios in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "spoof", About: "a spoofed X-Forwarded-For against a naive key, the article's RemoteAddr key and the trusted rules; PROXY protocol", Run: spoofDemo},
	{Name: "accuracy", About: "allowed vs ideal for bursts at window edges, per algorithm (fixed clock)", Run: accuracyDemo},
	{Name: "memory", About: "bytes per key in process and under a flood of distinct keys; Redis MEMORY USAGE and round trips per algorithm", Run: memoryDemo},
	{Name: "cluster", About: "hash slots of the article's keys; CROSSSLOT on the real Redis Cluster", Run: clusterDemo},
	{Name: "contention", About: "a keyed limiter with one mutex vs 64 shards at 1, 2, 8, 64 goroutines", Run: contentionDemo},
}

// options are the parsed flags of the scenarios.
type options struct {
	mode, redis string
	flood, ops  int
}

func main() { cli.Main("part11-ratelimit", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		o, err := parseServe(args[1:])
		if err != nil {
			return cli.ParseFailed(w, err, usageText())
		}
		return serve(ctx, w, o)
	}
	o, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	return modes.Run(ctx, w, o.mode, o)
}

// flags declares the scenarios' command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part11-ratelimit")
	fs.StringVar(&o.mode, "mode", "all", "scenario: "+modes.Help())
	fs.StringVar(&o.redis, "redis", "auto", "auto (the stack's Redis and Redis Cluster if they answer, else miniredis) | mini (always miniredis)")
	fs.IntVar(&o.flood, "flood", 1_000_000, "distinct keys in the memory flood (1000..10000000)")
	fs.IntVar(&o.ops, "ops", 200_000, "checks per contention measurement (1000..10000000)")
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
		return o, fmt.Errorf("unexpected argument %q (flags go before it; the only subcommand is serve, first)", fs.Arg(0))
	}
	return o, cmp.Or( // the first of these that fails
		modes.Check(o.mode),
		cli.OneOf("redis", o.redis, "auto", "mini"),
		cli.InRange("flood", o.flood, 1000, 10_000_000),
		cli.InRange("ops", o.ops, 1000, 10_000_000),
	)
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part11-ratelimit [-mode M] [-redis auto|mini] [-flood N] [-ops N]\n")
	b.WriteString("       go run ./part11-ratelimit serve [-addr A] [-algo ALG] [-limit N] [-window D] [-trusted-proxies CIDRS] ...\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	cli.WriteFlags(&b, "serve flags", serveFlags(new(serveOptions)))
	return b.String()
}
