package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part04-sharding/reshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// onlineDemo moves o.rows users from 2 to 3 shards (jump hash) with
// reshard.Online while a writer keeps writing, then checks every row.
func onlineDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== Online resharding 2 → 3 shards (jump hash) while a writer keeps writing: backfill, catch-up, freeze, cutover ==")
	if !o.env.pg {
		fmt.Fprintln(w, "needs PostgreSQL (logical decoding, row locks): skipped; `make up SERVICES=postgres` and run again")
		return nil
	}
	if err := o.env.reset(ctx); err != nil {
		return err
	}
	cat, pools := o.env.catalogPool, o.env.shardPools
	if err := reshard.InitCatalog(ctx, cat, reshard.JumpSpec(2)); err != nil {
		return err
	}
	for _, p := range pools[:2] {
		if err := reshard.InitShard(ctx, p, 1); err != nil {
			return err
		}
	}
	users := sequentialUsers(1, o.rows)
	c, err := shard.NewCluster(shard.Jump{N: 2}, o.env.shards[:2]...)
	if err != nil {
		return err
	}
	if err := c.Load(ctx, users); err != nil {
		return err
	}
	writer, err := reshard.NewWriter(ctx, cat, pools)
	if err != nil {
		return err
	}
	load := &reshard.Workload{W: writer, NextID: int64(o.rows) + 1, OpTimeout: 5 * time.Second}
	load.Preload(users)
	fmt.Fprintf(w, "preloaded %s users on %s and %s; one writer inserts, updates and deletes a user at a time, throughout\n",
		thousands(o.rows), shardDBs[0], shardDBs[1])

	steps := map[string]*step{}
	var mu sync.Mutex
	on := &reshard.Online{Catalog: cat, Shards: pools, Names: shardDBs, Batch: 1000, Pause: 2 * time.Millisecond,
		Progress: func(e reshard.Event) {
			mu.Lock()
			defer mu.Unlock()
			s := steps[e.Phase]
			if s == nil {
				s = &step{}
				steps[e.Phase] = s
			}
			s.took += e.Took
		}}
	if err := on.Begin(ctx, reshard.JumpSpec(3)); err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { load.Run(wctx) })
	rep, err := on.Run(ctx)
	if err == nil {
		time.Sleep(200 * time.Millisecond) // a few writes under the new routing
	}
	stop()
	wg.Wait()
	if err != nil {
		_ = on.Abort(context.WithoutCancel(ctx))
		return err
	}
	routing, err := reshard.ReadRouting(ctx, cat)
	if err != nil {
		return err
	}
	layout, err := reshard.Check(ctx, pools, routing.Router)
	if err != nil {
		return err
	}
	lost, unexpected, examples := load.Verify(layout)

	tw := table(w)
	fmt.Fprintln(tw, "step\tdid\ttook")
	fmt.Fprintf(tw, "backfill\t%s rows copied to their new shard\t%s\n", thousands(rep.Copied), ms(took(steps["backfill"])))
	fmt.Fprintf(tw, "catch-up\t%s changed ids copied again from the slots (the cutover's drain included)\t%s\n", thousands(rep.Applied), ms(took(steps["catchup"])))
	fmt.Fprintf(tw, "cutover\tfences to epoch %d, slots drained, routing written; %d attempt(s)\twrites frozen %s\n", rep.Epoch, rep.Attempts, ms(rep.Freeze))
	fmt.Fprintf(tw, "cleanup\t%s moved rows deleted from shards 0 and 1\t%s\n", thousands(rep.Deleted), ms(took(steps["cleanup"])))
	if err := tw.Flush(); err != nil {
		return err
	}
	lat := slices.Clone(load.Latencies)
	slices.Sort(lat)
	fmt.Fprintf(w, "writer: %s writes during the move, %s acknowledged, %d failed; %d refused by a fence and routed again; median write %s, slowest %s\n",
		thousands(len(lat)), thousands(load.Acked), load.Failed, writer.Rerouted.Load(), ms(lat[len(lat)/2]), ms(lat[len(lat)-1]))
	fmt.Fprintf(w, "check: %s rows; lost %d, duplicated %d, on a shard the new routing does not name %d, never written %d\n",
		thousands(layout.Rows), lost, layout.Duplicated, layout.Misplaced, unexpected)
	for _, e := range examples {
		fmt.Fprintln(w, "  ", e)
	}
	if lost+unexpected+layout.Duplicated+layout.Misplaced > 0 {
		return fmt.Errorf("the move lost or misplaced rows")
	}
	return nil
}

// step adds up the time a phase of the resharding took.
type step struct{ took time.Duration }

func took(s *step) time.Duration {
	if s == nil {
		return 0
	}
	return s.took
}
