//go:build integration

package stampede

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// TestIntegrationLoaderOnRedis: 1000 concurrent misses through Redis reach the
// backend once with a Group, and each of them without.
func TestIntegrationLoaderOnRedis(t *testing.T) {
	const n = 1000
	rdb, prefix := fixture.Redis(t)
	ctx := context.Background()
	for _, withGroup := range []bool{true, false} {
		var g *Group[string]
		if withGroup {
			g = &Group[string]{}
		}
		l := &Loader[string]{Store: RedisStore[string]{Client: rdb, Prefix: prefix}, TTL: time.Minute, Group: g, Timeout: 30 * time.Second}
		key := "product:hot"
		if !withGroup {
			key = "product:hot-plain"
		}
		var calls atomic.Int64
		release := make(chan struct{})
		fetch := func(context.Context) (string, error) {
			calls.Add(1)
			<-release
			return "v", nil
		}
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				v, err := l.Get(ctx, key, fetch)
				assert.NoError(t, err)
				assert.Equal(t, "v", v)
			})
		}
		if withGroup {
			fixture.WaitFor(t, "all callers to join", func() bool { return g.Stats().Waiting == n })
		} else {
			fixture.WaitFor(t, "every caller to miss", func() bool { return calls.Load() == n })
		}
		close(release)
		wg.Wait()
		want := int64(1)
		if !withGroup {
			want = n
		}
		require.Equal(t, want, calls.Load(), "group=%v: backend calls", withGroup)
	}
}
