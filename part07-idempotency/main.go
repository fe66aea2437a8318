// Command part07-idempotency is the runnable companion to Part 7 of the System
// Design Masterclass: the article's 100-goroutine test over HTTP on every
// store (memory, Redis, PostgreSQL), a retry storm with and without the
// Idempotency-Key middleware, the backoff schedule measured, and a payments
// API to try with curl.
//
//	go run ./part07-idempotency                               # every experiment
//	go run ./part07-idempotency -mode storm                   # one experiment
//	go run ./part07-idempotency serve -addr 127.0.0.1:8087    # POST/GET /payments until Ctrl-C
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sysdesign-masterclass/golang/internal/cli"
)

// modes lists the experiments in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "concurrent", About: "the article's test: N concurrent requests with one key, on each store; executions, status counts, round trips", Run: concurrentDemo},
	{Name: "storm", About: "clients time out and retry with the same key, with and without the middleware; payments written", Run: stormDemo},
	{Name: "backoff", About: "the article's jittered backoff vs full jitter for 1,000 clients, and where the article's overflows", Run: backoffDemo},
}

// options are the parsed flags.
type options struct {
	mode, store, addr string
	requests, clients int
}

func main() { cli.Main("part07-idempotency", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	if o.addr != "" {
		return serve(ctx, w, o)
	}
	return modes.Run(ctx, w, o.mode, o)
}

// flags declares the experiments' command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part07-idempotency")
	fs.StringVar(&o.mode, "mode", "all", "experiment: "+modes.Help())
	fs.StringVar(&o.store, "store", "auto", "idempotency store: auto (every reachable one; miniredis stands in for Redis) | memory | redis | postgres")
	fs.IntVar(&o.requests, "requests", 100, "concurrent requests with one key in -mode concurrent (2..10000)")
	fs.IntVar(&o.clients, "clients", 20, "clients in -mode storm, each with its own key (1..1000)")
	return fs
}

// serveFlags declares `serve`'s command line.
func serveFlags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("serve")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8087", "address to serve the payments API on")
	fs.StringVar(&o.store, "store", "auto", "where state lives: auto (records in Redis, else PostgreSQL, else memory; payments in PostgreSQL if it answers) | memory (all) | redis | postgres")
	return fs
}

// parse reads args into options and checks every value before anything runs.
func parse(args []string) (options, error) {
	var o options
	if len(args) > 0 && args[0] == "serve" {
		fs := serveFlags(&o)
		if err := fs.Parse(args[1:]); err != nil {
			return o, err
		}
		switch {
		case fs.NArg() > 0:
			return o, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
		case o.addr == "":
			return o, errors.New("serve: -addr is empty")
		}
		return o, checkStore(o.store)
	}
	fs := flags(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (the only subcommand is serve, and it comes first)", fs.Arg(0))
	}
	return o, cmp.Or( // the first of these that fails
		modes.Check(o.mode),
		cli.InRange("requests", o.requests, 2, 10_000),
		cli.InRange("clients", o.clients, 1, 1000),
		checkStore(o.store),
	)
}

func checkStore(s string) error {
	return cli.OneOf("store", s, "auto", "memory", "redis", "postgres")
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part07-idempotency [-mode M] [-store S] [-requests N] [-clients N]\n")
	b.WriteString("       go run ./part07-idempotency serve [-addr HOST:PORT] [-store S]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	cli.WriteFlags(&b, "serve flags", serveFlags(new(options)))
	return b.String()
}
