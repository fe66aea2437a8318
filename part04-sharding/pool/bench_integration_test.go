//go:build integration

package pool

import (
	"context"
	"testing"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/internal/pgtest"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
)

// BenchmarkQuery: Query through a pool of 8 connections from parallel
// goroutines, pgxpool (impl=ours, the chapter's choice) against database/sql
// on pgx's stdlib driver (impl=database-sql); ns/op is the inverse of
// queries/s across all goroutines.
func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	name := pgtest.Names(b, 1)[0]
	if err := Table(ctx, pgtest.Pool(b, name), 10_000); err != nil {
		b.Fatal(err)
	}
	url, err := pgshard.URL(stack.DatabaseURL(), name)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		impl string
		d    Driver
	}{{"ours", PgxPool}, {"database-sql", SQL}} {
		b.Run("impl="+bc.impl+"/conns=8", func(b *testing.B) {
			do, closeFn, err := open(ctx, bc.d, url, 8)
			if err != nil {
				b.Fatal(err)
			}
			defer closeFn()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				id := int64(1)
				for pb.Next() {
					if err := do(ctx, id); err != nil {
						b.Error(err)
						return
					}
					id = (id + 997) % 9800
				}
			})
		})
	}
}
