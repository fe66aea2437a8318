// Package reshard moves rows when the shard count changes: Offline (stop the
// writes, move, restart) counts what each strategy moves; Online moves them
// while a writer keeps writing, the way Vitess's MoveTables and Reshard do.
package reshard

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// Minimum returns the fewest rows that must change shard to go from counts
// (rows per existing shard) to a balanced layout over n shards (sizes differ
// by at most one): each shard can keep at most its target, and pairing the
// largest shards with the largest targets keeps the most.
func Minimum(counts []int64, n int) int64 {
	var total int64
	for _, c := range counts {
		total += c
	}
	if n <= 0 {
		return total
	}
	targets := make([]int64, n)
	for i := range targets {
		targets[i] = total / int64(n)
		if int64(i) < total%int64(n) {
			targets[i]++
		}
	}
	cs := slices.Clone(counts)
	slices.SortFunc(cs, func(a, b int64) int { return cmp.Compare(b, a) })
	var kept int64
	for i := 0; i < len(cs) && i < n; i++ {
		kept += min(cs[i], targets[i])
	}
	return total - kept
}

// Moves is what Offline did.
type Moves struct {
	Moved  int64     // rows that changed shard
	Matrix [][]int64 // Matrix[from][to]: rows moved from shard from to shard to
}

// Offline moves every row to the shard to names, reading each shard in id
// order (batch rows at a time), copying the rows that belong elsewhere and
// then deleting them from where they were. It is correct only with writes
// stopped: a write during it can land on the old shard after its row moved.
// shards must hold to.Shards() stores; rows are found where they are, so the
// old router is not needed.
func Offline(ctx context.Context, shards []shard.Store, to shard.Router, batch int) (Moves, error) {
	n := len(shards)
	if to.Shards() > n {
		return Moves{}, fmt.Errorf("reshard: %s needs %d shards, got %d", to, to.Shards(), n)
	}
	m := Moves{Matrix: make([][]int64, n)}
	for i := range m.Matrix {
		m.Matrix[i] = make([]int64, n)
	}
	for s, src := range shards {
		var after int64 = -1 << 63
		for {
			rows, err := src.Scan(ctx, after, batch)
			if err != nil {
				return m, &shard.ShardError{Shard: s, Name: src.Name(), Op: "scan", Err: err}
			}
			if len(rows) == 0 {
				break
			}
			after = rows[len(rows)-1].ID
			ids := make([]int64, len(rows))
			for i, r := range rows {
				ids[i] = r.ID
			}
			routes, err := shard.RouteAll(ctx, to, ids)
			if err != nil {
				return m, err
			}
			out := make([][]shard.User, n)
			var gone []int64
			for i, r := range rows {
				if t := routes[i]; t != s {
					out[t] = append(out[t], r)
					gone = append(gone, r.ID)
				}
			}
			for t, us := range out {
				if len(us) == 0 {
					continue
				}
				if err := shards[t].Put(ctx, us...); err != nil {
					return m, &shard.ShardError{Shard: t, Name: shards[t].Name(), Op: "copy in", Err: err}
				}
				m.Matrix[s][t] += int64(len(us))
				m.Moved += int64(len(us))
			}
			if err := src.Delete(ctx, gone...); err != nil {
				return m, &shard.ShardError{Shard: s, Name: src.Name(), Op: "delete moved rows", Err: err}
			}
		}
	}
	return m, nil
}
