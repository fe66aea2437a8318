package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// articleRouter is the article's GetShardDSN as a Router: ids below 1,000,000
// on the first shard, below 2,000,000 on the second, the rest on the third.
func articleRouter() *shard.Range {
	r, err := shard.NewRange([]int64{math.MinInt64, 1_000_000, 2_000_000}, math.MaxInt64)
	if err != nil {
		panic(err)
	}
	return r
}

// openEnded extends r's last range to every larger id, as a range router
// that must take new sign-ups does.
func openEnded(r *shard.Range) *shard.Range {
	open, err := shard.NewRange(r.Lower(), math.MaxInt64)
	if err != nil {
		panic(err)
	}
	return open
}

// routersDemo routes o.rows users (ids 1..rows), then the next tenth of that
// many sign-ups, through each router over three shards.
func routersDemo(ctx context.Context, w io.Writer, o options) error {
	n, next := o.rows, o.rows/10
	fmt.Fprintf(w, "== Where %s users (ids 1..%s) land on 3 shards, and where the next %s sign-ups go ==\n", thousands(n), thousands(n), thousands(next))
	if err := o.env.reset(ctx); err != nil {
		return err
	}
	ids := func(from int64, n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = from + int64(i)
		}
		return out
	}
	dir := shard.NewDirectory(o.env.table, 3)
	tw := table(w)
	fmt.Fprintln(tw, "router\tusers per shard 0 / 1 / 2\tnext sign-ups per shard\troutes through")
	for _, r := range []shard.Router{articleRouter(), openEnded(shard.EvenRange(1, int64(n), 3)), shard.Jump{N: 3}, shard.Modulo{N: 3}, shard.NewKeyRange(3), dir} {
		var cols [2]string
		for i, keys := range [][]int64{ids(1, n), ids(int64(n)+1, next)} {
			counts := make([]int64, 3)
			if r == shard.Router(dir) {
				// A directory routes what it has placed: place, then count
				// the entries in the table (one query, not a lookup a key).
				before, err := o.env.table.Counts(ctx)
				if err != nil {
					return err
				}
				if err := dir.PlaceAll(ctx, keys); err != nil {
					return err
				}
				after, err := o.env.table.Counts(ctx)
				if err != nil {
					return err
				}
				for s := range counts {
					counts[s] = after[s] - before[s]
				}
			} else {
				routes, err := shard.RouteAll(ctx, r, keys)
				if err != nil {
					return err
				}
				for _, s := range routes {
					counts[s]++
				}
			}
			cols[i] = spread(counts)
		}
		via := r.String()
		if r == shard.Router(dir) && o.env.pg {
			via += " (table directory in " + catalogDB + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name(r), cols[0], cols[1], via)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "the article's router is a range router written as a switch: every id below 1,000,000 is on its first shard, and")
	fmt.Fprintln(w, "with ids handed out in order every new user lands on the last range in use, the write hot spot it warns of for time keys.")
	return nil
}

// name is a router's short label for the tables.
func name(r shard.Router) string {
	switch v := r.(type) {
	case *shard.Range:
		if v.String() == articleRouter().String() {
			return "article's router"
		}
		return "range"
	case shard.Jump:
		return "jump hash"
	case shard.Modulo:
		return "hash % N"
	case *shard.KeyRange:
		return "key ranges"
	case *shard.Directory:
		return "directory"
	}
	return r.String()
}
