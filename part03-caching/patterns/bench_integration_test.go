//go:build integration

package patterns

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// BenchmarkPut is the write latency of each pattern on the stack's Redis and
// PostgreSQL: the article's Low / High / Very Low, measured side by side.
//
//	go test -tags integration -run '^$' -bench Put -benchmem -count 5 ./part03-caching/patterns
func BenchmarkPut(b *testing.B) {
	rdb, prefix := fixture.Redis(b)
	pool := fixture.Postgres(b)
	require.NoError(b, Migrate(context.Background(), pool))
	pg := PGStore{Pool: pool}
	b.Cleanup(func() { _ = pg.DeletePrefix(context.Background(), prefix) })
	cfg := Config{Redis: rdb, Prefix: prefix, TTL: time.Minute}
	for _, k := range kinds {
		b.Run("pattern="+k.name, func(b *testing.B) {
			p := k.new(cfg, pg)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				err := p.Put(ctx, Product{ID: fmt.Sprintf("%s%s-%d", prefix, k.name, i%1000), Name: "bench", PriceCents: int64(i)})
				require.NoError(b, err)
				i++
			}
			b.StopTimer()
			if w, ok := p.(*WriteBehind); ok {
				require.NoError(b, w.Close(ctx))
			}
		})
	}
}
