// Command part02-loadbalancing is the runnable companion to Part 2 of the
// System Design Masterclass: the balancing algorithms measured through a real
// L7 proxy on loopback, a backend killed under load, L4 against L7, one slow
// backend among four, and the per-client rate limiter with its Redis cousin.
//
//	go run ./part02-loadbalancing                      # every scenario
//	go run ./part02-loadbalancing -mode slow           # one scenario
//	go run ./part02-loadbalancing serve                # backends + L7 + L4 on loopback until Ctrl-C
//
//go:generate go run . -mode slow -requests 200 -chart slow-backend.svg
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/cli"
)

// modes lists the scenarios in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "l4l7", About: "L4 vs L7 on loopback: added latency, requests/s, connections/s, and the bytes DSR would take off the balancer", Run: l4l7Demo},
	{Name: "distribution", About: "requests per backend for each algorithm through the L7 proxy; sticky by cookie, header, NAT'd IP", Run: distributionDemo},
	{Name: "failover", About: "a backend killed under load: ejected, no GET/PUT lost, POSTs never replayed, readmitted", Run: failoverDemo},
	{Name: "slow", About: "one backend 5x slower among four: p50/p99 per algorithm, simulated and on loopback", Run: slowDemo},
	{Name: "ratelimit", About: "per-client token bucket: burst, then 429s with headers; spoofed X-Forwarded-For; Redis fixed window and its policy", Run: rateLimitDemo},
}

// options are the parsed flags.
type options struct {
	mode, redis, chart string
	requests           int
}

func main() {
	redis.SetLogger(quiet{}) // the demo prints the errors it meets; go-redis would log each failed dial too
	cli.Main("part02-loadbalancing", run)
}

// quiet drops go-redis's own log lines.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		return runServe(ctx, args[1:], w)
	}
	o, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	return modes.Run(ctx, w, o.mode, o)
}

// flags declares the command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part02-loadbalancing")
	fs.StringVar(&o.mode, "mode", "all", "scenario: "+modes.Help())
	fs.IntVar(&o.requests, "requests", 2000, "requests per loopback measurement (100..1000000)")
	fs.StringVar(&o.redis, "redis", "auto", "Redis for the fixed-window limiter: auto (the stack's if reachable, else in-process miniredis) | stack | miniredis")
	fs.StringVar(&o.chart, "chart", "", "with -mode slow: also write the simulation's latency chart (SVG) to this file")
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
	if err := cmp.Or( // the first of these that fails
		modes.Check(o.mode),
		cli.InRange("requests", o.requests, 100, 1_000_000),
		cli.OneOf("redis", o.redis, "auto", "stack", "miniredis"),
	); err != nil {
		return o, err
	}
	if o.chart != "" && o.mode != "slow" {
		return o, errors.New("-chart draws the slow-backend simulation; use it with -mode slow")
	}
	return o, nil
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part02-loadbalancing [-mode M] [-requests N] [-redis R] [-chart FILE]\n")
	b.WriteString("       go run ./part02-loadbalancing serve [serve flags; serve -h lists them]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	return b.String()
}
