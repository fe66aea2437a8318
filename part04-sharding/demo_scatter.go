package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// scatterDemo loads o.rows users onto three shards (jump hash) and into one
// table, and asks both for the top k by score, page after page.
func scatterDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== Top %d users by score across 3 shards (jump hash), merged, against one table holding all %s ==\n", o.k, thousands(o.rows))
	if err := o.env.reset(ctx); err != nil {
		return err
	}
	users := sequentialUsers(1, o.rows)
	c, err := shard.NewCluster(shard.Jump{N: 3}, o.env.shards...)
	if err != nil {
		return err
	}
	if err := c.Load(ctx, users); err != nil {
		return err
	}
	if err := o.env.oracle.Put(ctx, users...); err != nil {
		return err
	}
	one, err := shard.NewCluster(shard.Jump{N: 1}, o.env.oracle)
	if err != nil {
		return err
	}
	where := map[int64]int{}
	for s, st := range o.env.shards {
		rows, err := st.Top(ctx, nil, o.k*2)
		if err != nil {
			return err
		}
		for _, u := range rows {
			where[u.ID] = s
		}
	}
	var after *shard.Cursor
	for p := 1; p <= 2; p++ {
		page, err := c.Top(ctx, shard.TopOptions{Limit: o.k, After: after})
		if err != nil {
			return err
		}
		want, err := one.Top(ctx, shard.TopOptions{Limit: o.k, After: after})
		if err != nil {
			return err
		}
		same := "yes"
		if !slices.Equal(page.Users, want.Users) {
			same = "NO"
		}
		fmt.Fprintf(w, "page %d: %d users from %d rows fetched (%d per shard); same as one table's ORDER BY score DESC, id DESC LIMIT %d: %s\n",
			p, len(page.Users), o.k*len(o.env.shards), o.k, o.k, same)
		if p == 1 {
			tw := table(w)
			fmt.Fprintln(tw, "rank\tid\tscore\tshard")
			for i, u := range page.Users[:min(5, len(page.Users))] {
				s := fmt.Sprint(where[u.ID])
				if _, ok := where[u.ID]; !ok {
					s = "?"
				}
				fmt.Fprintf(tw, "%d\t%d\t%d\t%s\n", i+1, u.ID, u.Score, s)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if page.Next == nil {
			break
		}
		after = page.Next
	}

	down := append(slices.Clone(o.env.shards[:2]), unreachable{o.env.shards[2]})
	c, err = shard.NewCluster(shard.Jump{N: 3}, down...)
	if err != nil {
		return err
	}
	_, err = c.Top(ctx, shard.TopOptions{Limit: o.k})
	fmt.Fprintf(w, "shard 2 down: %v\n", err)
	page, err := c.Top(ctx, shard.TopOptions{Limit: o.k, AllowPartial: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "shard 2 down, AllowPartial: %d users, Missing = shard %d (%s): the caller is told the answer lacks a shard\n",
		len(page.Users), page.Missing[0].Shard, page.Missing[0].Name)
	return nil
}

// unreachable is a shard whose server does not answer.
type unreachable struct{ shard.Store }

var errUnreachable = errors.New("dial tcp: connect: connection refused (simulated)")

func (unreachable) Top(context.Context, *shard.Cursor, int) ([]shard.User, error) {
	return nil, errUnreachable
}
