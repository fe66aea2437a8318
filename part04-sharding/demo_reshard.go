package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/sysdesign-masterclass/golang/part04-sharding/reshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// reshardDemo loads o.rows users onto 2 shards under each strategy, moves
// them to the strategy's 3-shard layout with reshard.Offline, and counts.
func reshardDemo(ctx context.Context, w io.Writer, o options) error {
	n := int64(o.rows)
	fmt.Fprintf(w, "== 2 → 3 shards: rows moved by each strategy, %s users (ids 1..%s) ==\n", thousands(n), thousands(n))
	newShardForNewIDs, err := shard.NewRange([]int64{1, n/2 + 1, n + 1}, math.MaxInt64)
	if err != nil {
		return err
	}
	type strategy struct {
		name     string
		from, to shard.Router
	}
	tw := table(w)
	fmt.Fprintln(tw, "strategy\tmoved\tof all rows\tfewest possible\tafter: rows per shard 0 / 1 / 2\tnew sign-ups go to")
	for _, s := range []strategy{
		{"range, split again evenly", openEnded(shard.EvenRange(1, n, 2)), openEnded(shard.EvenRange(1, n, 3))},
		{"range, new shard takes new ids", openEnded(shard.EvenRange(1, n, 2)), newShardForNewIDs},
		{"hash % N", shard.Modulo{N: 2}, shard.Modulo{N: 3}},
		{"key ranges (Vitess)", shard.NewKeyRange(2), shard.NewKeyRange(3)},
		{"jump hash", shard.Jump{N: 2}, shard.Jump{N: 3}},
		{"directory", nil, nil},
	} {
		if err := o.env.reset(ctx); err != nil {
			return err
		}
		users := sequentialUsers(1, int(n))
		if s.from == nil { // the directory: place on 2 shards
			d := shard.NewDirectory(o.env.table, 2)
			ids := make([]int64, len(users))
			for i, u := range users {
				ids[i] = u.ID
			}
			if err := d.PlaceAll(ctx, ids); err != nil {
				return err
			}
			s.from, s.to = d, d.WithShards(3)
		}
		c, err := shard.NewCluster(s.from, o.env.shards...)
		if err != nil {
			return err
		}
		if err := c.Load(ctx, users); err != nil {
			return err
		}
		before, err := c.Counts(ctx)
		if err != nil {
			return err
		}
		fewest := reshard.Minimum(before[:2], 3)
		if _, ok := s.from.(*shard.Directory); ok {
			// Moving a key is an update of its entry: move just enough of the
			// highest ids from each shard to the new one.
			for from, cnt := range before[:2] {
				if _, err := o.env.table.Reassign(ctx, from, 2, int(cnt-n/3)); err != nil {
					return err
				}
			}
		}
		m, err := reshard.Offline(ctx, o.env.shards, s.to, 5000)
		if err != nil {
			return err
		}
		after, err := c.Counts(ctx)
		if err != nil {
			return err
		}
		if after[0]+after[1]+after[2] != n {
			return fmt.Errorf("%s: %d rows after the move, want %d", s.name, after[0]+after[1]+after[2], n)
		}
		signups := "spread"
		if r, ok := s.to.(*shard.Range); ok {
			last, _ := r.Route(ctx, n+1)
			signups = fmt.Sprintf("all to shard %d", last)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.name, thousands(m.Moved), pct(m.Moved, n), thousands(fewest), spread(after), signups)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "fewest possible: the rows a balanced 3-shard layout must put on the new shard. Jump hash moves about that many, all")
	fmt.Fprintln(w, "to the new shard; a directory moves exactly that many; % N moves two thirds; even ranges half; a range for new ids")
	fmt.Fprintln(w, "moves nothing and leaves the new shard empty while it takes every new sign-up.")
	return nil
}
