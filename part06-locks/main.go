// Command part06-locks is the runnable companion to Part 6 of the System
// Design Masterclass: the lost update a lock prevents, Redlock's validity
// arithmetic against redsync's own, etcd's whole-second leases, lock latency
// per backend, a paused holder stopped by a fencing token, and the PayPay
// campaign with a global lock against one Lua script.
//
//	go run ./part06-locks                    # every scenario
//	go run ./part06-locks -mode fencing      # one scenario
//	go run ./part06-locks -stack off         # in-process stand-ins even when the stack is up
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/part06-locks/internal/services"
)

// modes lists the scenarios in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "race", About: "the article's lost update (balance 1000, withdrawals of 500 and 300) without and with the lock", Run: raceDemo},
	{Name: "validity", About: "MIN_VALIDITY: the article's example, redsync's formula, defaults and Until(); etcd's whole-second TTLs", Run: validityDemo},
	{Name: "latency", About: "lock latency percentiles per backend beside the article's 1–5 ms and 5–20 ms; contention with an overlap check", Run: latencyDemo},
	{Name: "fencing", About: "split brain: holder A cut off past its TTL, B takes over, A's late write is rejected by its token", Run: fencingDemo},
	{Name: "campaign", About: "PayPay: 10,000 prizes claimed with no lock, a global lock (Redlock, etcd) and one Lua script", Run: campaignDemo},
}

// options are the parsed flags, and the services the scenarios share.
type options struct {
	mode, stack         string
	samples, goroutines int
	prizes, claimers    int
	budget              time.Duration
	verbose             bool
	env                 *services.Env // opened by run once the flags are checked
}

// sectionLimit bounds one scenario: long enough for -samples 100000 on the
// slowest backend, short enough that a stalled (paused) service ends the run.
const sectionLimit = 10 * time.Minute

func main() { cli.Main("part06-locks", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	quietRedis(o.verbose)
	env, err := services.Open(ctx, o.stack == "auto")
	if err != nil {
		return fmt.Errorf("setup: %w (scripts/stack status shows what is running)", err)
	}
	defer env.Close()
	env.Describe(w)
	o.env = env
	for _, m := range modes { // modes.Run, plus a blank line, a time limit and a hint per scenario
		if o.mode == "all" || o.mode == m.Name {
			fmt.Fprintln(w)
			sctx, cancel := context.WithTimeout(ctx, sectionLimit) // a service that stalls mid-section ends the run
			err := m.Run(sctx, w, o)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w (scripts/stack status shows what is running; scripts/stack up redis redlock etcd postgres starts what stopped, scripts/stack resume SVC a paused one)", m.Name, err)
			}
		}
	}
	return nil
}

// flags declares the command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part06-locks")
	fs.StringVar(&o.mode, "mode", "all", "scenario: "+modes.Help())
	fs.StringVar(&o.stack, "stack", "auto", "auto: the stack's Redis, etcd and PostgreSQL when they answer, else in-process stand-ins | off: stand-ins only")
	fs.IntVar(&o.samples, "samples", 1000, "latency: lock cycles timed per backend, and the cycles of the contention run (10..100000)")
	fs.IntVar(&o.goroutines, "goroutines", 8, "latency: goroutines contending for one lock (2..256)")
	fs.IntVar(&o.prizes, "prizes", 10_000, "campaign: prizes (the article's 10,000; 1..1000000)")
	fs.IntVar(&o.claimers, "claimers", 64, "campaign: concurrent claimers (1..1024)")
	fs.DurationVar(&o.budget, "budget", 5*time.Second, "campaign: longest run of each lock-based row (100ms..10m)")
	fs.BoolVar(&o.verbose, "v", false, "show go-redis's own log lines (dial failures, reconnects) on stderr")
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
		cli.InRange("samples", o.samples, 10, 100_000),
		cli.InRange("goroutines", o.goroutines, 2, 256),
		cli.InRange("prizes", o.prizes, 1, 1_000_000),
		cli.InRange("claimers", o.claimers, 1, 1024),
	); err != nil {
		return o, err
	}
	if o.budget < 100*time.Millisecond || o.budget > 10*time.Minute {
		return o, fmt.Errorf("-budget %v is out of range 100ms..10m", o.budget)
	}
	return o, nil
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part06-locks [-mode M] [-stack auto|off] [-samples N] [-goroutines N] [-prizes N] [-claimers N] [-budget D] [-v]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	return b.String()
}
