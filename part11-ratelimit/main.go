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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sysdesign-masterclass/golang/internal/cli"
)

// modes lists the scenarios in the order "all" runs them: the article's.
var modes = []struct {
	name, about string
	run         func(ctx context.Context, w io.Writer, o options) error
}{
	{"spoof", "a spoofed X-Forwarded-For against a naive key, the article's RemoteAddr key and the trusted rules; PROXY protocol", spoofDemo},
	{"accuracy", "allowed vs ideal for bursts at window edges, per algorithm (fixed clock)", accuracyDemo},
	{"memory", "bytes per key in process and under a flood of distinct keys; Redis MEMORY USAGE and round trips per algorithm", memoryDemo},
	{"cluster", "hash slots of the article's keys; CROSSSLOT on the real Redis Cluster", clusterDemo},
	{"contention", "a keyed limiter with one mutex vs 64 shards at 1, 2, 8, 64 goroutines", contentionDemo},
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
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(w, usageText())
			return err
		}
		if err != nil {
			return &cli.UsageError{Err: err, Usage: usageText()}
		}
		return serve(ctx, w, o)
	}
	o, err := parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(w, usageText())
		return err
	}
	if err != nil {
		return &cli.UsageError{Err: err, Usage: usageText()}
	}
	for _, m := range modes {
		if o.mode == "all" || o.mode == m.name {
			if err := m.run(ctx, w, o); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
	}
	return nil
}

// flags declares the scenarios' command line on a fresh FlagSet that prints
// nothing: run reports errors and the usage itself.
func flags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("part11-ratelimit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.mode, "mode", "all", "scenario: all | "+strings.Join(modeNames(), " | "))
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
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q (flags go before it; the only subcommand is serve, first)", fs.Arg(0))
	case o.mode != "all" && !slices.Contains(modeNames(), o.mode):
		return o, fmt.Errorf("unknown -mode %q; want all | %s", o.mode, strings.Join(modeNames(), " | "))
	case o.redis != "auto" && o.redis != "mini":
		return o, fmt.Errorf("unknown -redis %q; want auto | mini", o.redis)
	case o.flood < 1000 || o.flood > 10_000_000:
		return o, fmt.Errorf("-flood %d is out of range 1000..10000000", o.flood)
	case o.ops < 1000 || o.ops > 10_000_000:
		return o, fmt.Errorf("-ops %d is out of range 1000..10000000", o.ops)
	}
	return o, nil
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part11-ratelimit [-mode M] [-redis auto|mini] [-flood N] [-ops N]\n")
	b.WriteString("       go run ./part11-ratelimit serve [-addr A] [-algo ALG] [-limit N] [-window D] [-trusted-proxies CIDRS] ...\n\nmodes:\n")
	for _, m := range modes {
		fmt.Fprintf(&b, "  %-11s %s\n", m.name, m.about)
	}
	b.WriteString("\nflags:\n")
	fs := flags(new(options))
	fs.SetOutput(&b)
	fs.PrintDefaults()
	b.WriteString("\nserve flags:\n")
	fs = serveFlags(new(serveOptions))
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

func modeNames() []string {
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = m.name
	}
	return names
}
