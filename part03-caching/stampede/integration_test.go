//go:build integration

package stampede

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
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

// TestIntegrationLockAcrossProcesses is the article's third defence on real Redis with
// real processes: three copies of this test binary (each its own instance, with its
// own Group) miss one key at the same moment. With RedisLock exactly one of them
// rebuilds and all three serve its value; without it each process rebuilds once.
func TestIntegrationLockAcrossProcesses(t *testing.T) {
	const processes = 3
	rdb, prefix := fixture.Redis(t)
	for _, useLock := range []bool{true, false} {
		t.Run(fmt.Sprintf("lock=%v", useLock), func(t *testing.T) {
			p := fmt.Sprintf("%slock=%v:", prefix, useLock)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			type result struct {
				out []byte
				err error
			}
			results := make(chan result, processes)
			for range processes {
				cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), lockChildEnv+"="+p, fmt.Sprintf("%s=%d", lockChildPeers, map[bool]int{false: processes}[useLock]))
				cmd.Stderr = &bytes.Buffer{}
				go func() {
					out, err := cmd.Output()
					if err != nil {
						err = fmt.Errorf("%w: %s", err, cmd.Stderr)
					}
					results <- result{out, err}
				}()
			}
			fixture.WaitFor(t, "every process to be ready", func() bool {
				n, _ := rdb.Get(ctx, p+"ready").Int()
				return n == processes
			})
			require.NoError(t, rdb.Set(ctx, p+"go", 1, time.Minute).Err())
			values := map[string]int{}
			for range processes {
				r := <-results
				require.NoError(t, r.err)
				values[strings.TrimSpace(string(r.out))]++
			}
			rebuilds, err := rdb.Get(ctx, p+"rebuilds").Int()
			require.NoError(t, err)
			t.Logf("%d processes × %d concurrent misses: %d rebuild(s); values served: %v", processes, lockChildCallers, rebuilds, values)
			if useLock {
				assert.Equal(t, 1, rebuilds, "with the lock, one rebuild for all processes")
				assert.Len(t, values, 1, "every process serves the one rebuild")
			} else {
				assert.Equal(t, processes, rebuilds, "without the lock, one rebuild per process (its Group still works)")
			}
		})
	}
}
