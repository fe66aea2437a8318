// Command part03-caching runs the chapter's experiments: the five cache patterns, a
// cache stampede on a hot key under each defence, the Shopee flash-sale figure at
// this machine's scale, and Redis LFU/LRU eviction on a real redis-server.
//
//	go run ./part03-caching                     # every section, about 15 s on 2 cores
//	go run ./part03-caching -mode stampede -n 5000
//	go run ./part03-caching -h                  # the modes and flags
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/part03-caching/experiment"
)

// modes lists the sections in the order "all" runs them; About is each one's heading.
var modes = cli.Modes[*config]{
	{Name: "patterns", About: "Five patterns: write, read back, crash", Run: patternsDemo},
	{Name: "stampede", About: "Stampede on a hot key at expiry", Run: stampedeDemo},
	{Name: "shopee", About: "Shopee flash sale, scaled to this machine", Run: shopeeDemo},
	{Name: "lfu", About: "Redis LFU and LRU: counters, eviction, samples", Run: lfuDemo},
}

func main() { cli.Main("part03-caching", run) }

// run is main without the process: tests call it with their own args, output and
// context. Section errors name the section and, when a stack service failed, how to
// bring it back.
func run(ctx context.Context, args []string, w io.Writer) error {
	c, err := parseFlags(args, w)
	if err != nil || c == nil { // c == nil: -h was printed
		return err
	}
	redis.SetLogger(redisLogger{verbose: c.verbose}) // go-redis logs every failed dial otherwise
	defer func() {
		if c.env != nil {
			c.env.Close()
		}
	}()
	for _, m := range modes { // modes.Run, plus the shared Redis and a failure that names the service
		if c.mode != "all" && c.mode != m.Name {
			continue
		}
		sctx, done := ctx, func() {}
		if m.Name != "lfu" { // the LFU section runs its own redis-server
			if c.env == nil {
				if c.env, err = experiment.Connect(ctx, c.useStack); err != nil {
					return sectionFailure("setup", c.mode, err, nil)
				}
				c.env.Describe(w)
			}
			sctx, done = c.env.Section(ctx) // ends as soon as Redis fails
		}
		fmt.Fprintf(w, "\n== %s ==\n", m.About)
		err := m.Run(sctx, w, c)
		done()
		if err != nil {
			return sectionFailure(m.Name, c.mode, err, c.env)
		}
	}
	return nil
}
