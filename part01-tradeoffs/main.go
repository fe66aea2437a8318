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
	{"tradeoff", "the 3D trade-off table, computed: nodes for a 500k RPS peak at each availability target", tradeoffDemo},
	{"availability", "composite availability, downtime, error budget, a nested multi-region tree", availabilityDemo},
	{"partition", "Gilbert & Lynch's partition in CP and AP mode; Cassandra's ONE/QUORUM/ALL measured", partitionDemo},
	{"pacelc", "the PACELC table with the mechanism behind each label", pacelcDemo},
	{"users", "the Clean Architecture users API over HTTP, and an SLI measured against the SLO", usersDemo},
}

// options are the parsed flags.
type options struct {
	mode, store, serve string
	requests, ops      int
}

func main() { cli.Main("part01-tradeoffs", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, err := parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(w, usageText())
		return err
	}
	if err != nil {
		return &cli.UsageError{Err: err, Usage: usageText()}
	}
	if o.serve != "" {
		return serveAPI(ctx, w, o)
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

// flags declares the command line on a fresh FlagSet that prints nothing:
// run reports errors and the usage itself.
func flags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("part01-tradeoffs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.mode, "mode", "all", "scenario: all | "+strings.Join(modeNames(), " | "))
	fs.StringVar(&o.store, "store", "auto", "users storage: auto (PostgreSQL if reachable, else in-memory) | postgres | memory")
	fs.StringVar(&o.serve, "serve", "", "serve the users API on this address (e.g. :8080) until Ctrl-C, instead of the scenarios")
	fs.IntVar(&o.requests, "requests", 2000, "requests sent to the users API to measure its latency SLI (1..1000000)")
	fs.IntVar(&o.ops, "ops", 20000, "operations per consistency-level run in -mode partition (1..1000000)")
	return fs
}

// parse reads args into options and checks every value before anything runs.
func parse(args []string) (options, error) {
	var o options
	fs := flags(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q (flags go before it, and there are no positional arguments)", fs.Arg(0))
	case o.mode != "all" && !slices.Contains(modeNames(), o.mode):
		return o, fmt.Errorf("unknown -mode %q; want all | %s", o.mode, strings.Join(modeNames(), " | "))
	case !slices.Contains([]string{"auto", "postgres", "memory"}, o.store):
		return o, fmt.Errorf("unknown -store %q; want auto | postgres | memory", o.store)
	case o.serve != "" && set["mode"]:
		return o, errors.New("-serve runs the API instead of the scenarios; drop -mode")
	case o.requests < 1 || o.requests > 1_000_000:
		return o, fmt.Errorf("-requests %d is out of range 1..1000000", o.requests)
	case o.ops < 1 || o.ops > 1_000_000:
		return o, fmt.Errorf("-ops %d is out of range 1..1000000", o.ops)
	}
	return o, nil
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part01-tradeoffs [-mode M] [-store S] [-requests N] [-ops N]\n")
	b.WriteString("       go run ./part01-tradeoffs -serve ADDR [-store S]\n\nmodes:\n")
	for _, m := range modes {
		fmt.Fprintf(&b, "  %-13s %s\n", m.name, m.about)
	}
	b.WriteString("\nflags:\n")
	fs := flags(new(options))
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
