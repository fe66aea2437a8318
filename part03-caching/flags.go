package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/part03-caching/experiment"
	"github.com/sysdesign-masterclass/golang/part03-caching/lfu"
	"github.com/sysdesign-masterclass/golang/part03-caching/tiered"
)

const usageLine = "usage: go run ./part03-caching [-mode all|patterns|stampede|shopee|lfu] [-stack auto|off] [flags]"

// usageHint follows a usage error's message on stderr.
const usageHint = usageLine + " (-h lists the flags)"

// config is the parsed command line, plus the environment the sections share.
type config struct {
	mode     string
	useStack bool
	verbose  bool
	writes   int
	st       experiment.StampedeConfig
	sh       experiment.ShopeeConfig
	lf       lfu.Config
	env      *experiment.Env // connected by the first section that needs Redis
}

// parseFlags returns the config, nil after printing -h, or a *cli.UsageError.
func parseFlags(args []string, w io.Writer) (*config, error) {
	c := &config{}
	fs := cli.NewFlagSet("part03-caching") // errors are returned; -h prints to w below
	fs.StringVar(&c.mode, "mode", "all", "section: "+modes.Help())
	stackMode := fs.String("stack", "auto", "auto: the stack's Redis and PostgreSQL when they answer, else in-process stand-ins | off: stand-ins only")
	fs.BoolVar(&c.verbose, "v", false, "show go-redis's own log lines (dial failures, reconnects) on stderr")
	fs.IntVar(&c.writes, "writes", 200, "patterns: writes (and reads) per pattern")
	fs.IntVar(&c.st.Burst, "n", 1000, "stampede: concurrent requests released at the moment of expiry")
	trickle := fs.Int("trickle", 200, "stampede: requests spread over the TTL before expiry")
	fs.DurationVar(&c.st.TTL, "ttl", 500*time.Millisecond, "stampede: TTL of the hot key")
	fs.DurationVar(&c.st.BackendLatency, "backend-latency", 50*time.Millisecond, "stampede: duration of one recompute (XFetch's δ)")
	fs.Float64Var(&c.st.Beta, "beta", 1, "stampede: XFetch β")
	fs.IntVar(&c.st.Pods, "stampede-pods", 4, "stampede: instances sharing Redis in the last two rows")
	fs.IntVar(&c.sh.Requests, "shopee-requests", 50_000, "shopee: requests on the hot key")
	fs.IntVar(&c.sh.Pods, "pods", 10, "shopee: simulated pods, each with its own L1")
	fs.DurationVar(&c.sh.Spike, "spike", 500*time.Millisecond, "shopee: window the requests arrive in")
	fs.DurationVar(&c.sh.L1TTL, "l1-ttl", time.Second, "shopee: local (L1) TTL")
	fs.IntVar(&c.lf.Keys, "lfu-keys", 2000, "lfu: keys loaded")
	fs.IntVar(&c.lf.Accesses, "lfu-accesses", 100_000, "lfu: Zipf-distributed GETs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(w, usageLine)
			cli.WriteFlags(w, "flags", fs)
			return nil, nil
		}
		return nil, &cli.UsageError{Err: err, Usage: usageHint}
	}
	if fs.NArg() > 0 {
		return nil, cli.Usagef(usageHint, "unexpected arguments %q", fs.Args())
	}
	c.useStack = *stackMode == "auto"
	c.st.Trickle = *trickle
	if *trickle == 0 {
		c.st.Trickle = -1 // StampedeConfig: 0 means the default, negative none
	}
	if err := cmp.Or( // the first of these that fails
		modes.Check(c.mode),
		cli.OneOf("stack", *stackMode, "auto", "off"),
	); err != nil {
		return nil, &cli.UsageError{Err: err, Usage: usageHint}
	}
	for _, check := range []struct {
		bad  bool
		what string
	}{
		{c.writes < 1, "-writes must be at least 1"},
		{c.st.Burst < 1, "-n must be at least 1"},
		{*trickle < 0, "-trickle must not be negative"},
		{c.st.TTL <= 0 || c.st.TTL > tiered.MaxLocalTTL, fmt.Sprintf("-ttl must lie in (0, %v]", tiered.MaxLocalTTL)},
		{c.st.BackendLatency <= 0, "-backend-latency must be positive"},
		{!(c.st.Beta > 0), "-beta must be positive"},
		{c.st.Pods < 1, "-stampede-pods must be at least 1"},
		{c.sh.Requests < 1, "-shopee-requests must be at least 1"},
		{c.sh.Pods < 1, "-pods must be at least 1"},
		{c.sh.Spike <= 0, "-spike must be positive"},
		{c.sh.L1TTL <= 0 || c.sh.L1TTL > tiered.MaxLocalTTL, fmt.Sprintf("-l1-ttl must lie in (0, %v]", tiered.MaxLocalTTL)},
		{c.lf.Keys < 2, "-lfu-keys must be at least 2"},
		{c.lf.Accesses < 1, "-lfu-accesses must be at least 1"},
	} {
		if check.bad {
			return nil, &cli.UsageError{Err: errors.New(check.what), Usage: usageHint}
		}
	}
	return c, nil
}
