//go:build integration

package pgshard_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/sysdesign-masterclass/golang/part04-sharding/internal/pgtest"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard/contract"
)

// BenchmarkTop: the top 10 by score across 3 shards (impl=ours: three
// queries at once, merged) against the same query on one table holding every
// row (impl=single-table), 30,000 users.
func BenchmarkTop(b *testing.B) {
	ctx := context.Background()
	stores := pgtest.Stores(b, 4)
	users := contract.Users(rand.New(rand.NewPCG(9, 9)), 30_000, 1000)
	three, err := shard.NewCluster(shard.Jump{N: 3}, stores[0], stores[1], stores[2])
	if err != nil {
		b.Fatal(err)
	}
	one, err := shard.NewCluster(shard.Jump{N: 1}, stores[3])
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []*shard.Cluster{three, one} {
		if err := c.Load(ctx, users); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		impl string
		c    *shard.Cluster
	}{{"ours", three}, {"single-table", one}} {
		b.Run("impl="+bc.impl+"/k=10", func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.c.Top(ctx, shard.TopOptions{Limit: 10}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
