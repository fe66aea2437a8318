// Command part09-hashing regenerates chapter 9's numbers: keys moved by modulo
// hashing vs a consistent hash ring (and jump hash, bounded loads), the load
// std-dev table by virtual nodes, GetN replica sets and weights, what a joining
// node streams from whom, and Redis Cluster slots.
//
//	go run ./part09-hashing                      # everything
//	go run ./part09-hashing -mode stddev -hashes crc32,xxhash,fnv1a
//	go run ./part09-hashing -chart part09-hashing/stddev.svg
package main

//go:generate go run . -mode stddev -chart stddev.svg

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/part09-hashing/measure"
	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// config is the parsed command line, shared by every mode.
type config struct {
	keys   []string // "key:0" … "key:<n-1>"
	sets   int      // node-name sets averaged per measurement
	hashes []string // names in ring.Hashes, for the std-dev table
	chart  string   // SVG path for the std-dev chart, "" for none
}

// modes lists the demos in the order "all" runs them.
var modes = cli.Modes[config]{
	{Name: "remap", Run: remapDemo},
	{Name: "stddev", Run: stddevDemo},
	{Name: "getn", Run: getnDemo},
	{Name: "rebalance", Run: rebalanceDemo},
	{Name: "slots", Run: slotsDemo},
}

// Bounds of the numeric flags: below them the statistics are undefined, above
// them a run takes minutes and gigabytes.
const (
	maxKeys = 10_000_000
	maxSets = 1000
)

const usageLine = "usage: go run ./part09-hashing [-mode M] [-keys K] [-sets S] [-hashes H] [-chart FILE]"

// usageHint follows a usage error's message on stderr.
const usageHint = usageLine + "\nrun with -h for the flags"

func main() { cli.Main("part09-hashing", run) }

// run is main without the process: tests call it with their own args, output
// and context. A bad command line returns a *cli.UsageError before anything runs.
func run(ctx context.Context, args []string, w io.Writer) error {
	c, mode, err := parse(args, w)
	if err != nil || mode == "" {
		return err
	}
	for _, m := range modes { // modes.Run, but -chart adds stddev to any mode
		if mode != "all" && mode != m.Name && (m.Name != "stddev" || c.chart == "") {
			continue
		}
		if err := m.Run(ctx, w, c); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// parse reads the flags. For -h it prints the usage on w and returns mode "".
func parse(args []string, w io.Writer) (config, string, error) {
	fs := cli.NewFlagSet("part09-hashing") // errors are returned; -h is printed below
	mode := fs.String("mode", "all", "what to run: "+modes.Help())
	nkeys := fs.Int("keys", 100_000, fmt.Sprintf(`number of keys "key:%%d" to place, 1…%d`, maxKeys))
	sets := fs.Int("sets", 20, fmt.Sprintf("node-name sets averaged per measurement, 1…%d", maxSets))
	hashes := fs.String("hashes", "crc32,xxhash", "hashes for the std-dev table: crc32, xxhash, fnv1a")
	chart := fs.String("chart", "", "also write the std-dev vs V chart (SVG) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(w, usageLine)
			cli.WriteFlags(w, "flags", fs)
			return config{}, "", nil
		}
		return config{}, "", &cli.UsageError{Err: err, Usage: usageHint}
	}
	if fs.NArg() > 0 {
		return config{}, "", cli.Usagef(usageHint, "unexpected arguments %q", fs.Args())
	}
	if err := modes.Check(*mode); err != nil {
		return config{}, "", &cli.UsageError{Err: err, Usage: usageHint}
	}
	switch {
	case *nkeys < 1 || *nkeys > maxKeys:
		return config{}, "", cli.Usagef(usageHint, "-keys %d out of range 1…%d", *nkeys, maxKeys)
	case *sets < 1 || *sets > maxSets:
		return config{}, "", cli.Usagef(usageHint, "-sets %d out of range 1…%d", *sets, maxSets)
	}
	c := config{keys: measure.Keys(*nkeys), sets: *sets, chart: *chart}
	for _, h := range strings.Split(*hashes, ",") {
		if _, ok := ring.Hashes[h]; !ok {
			return config{}, "", cli.Usagef(usageHint, "unknown hash %q in -hashes (want crc32, xxhash or fnv1a)", h)
		}
		c.hashes = append(c.hashes, h)
	}
	return c, *mode, nil
}
