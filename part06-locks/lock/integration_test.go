//go:build integration

package lock

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// stackRedis is a client of the stack's single Redis, which the
// cross-process tests use for their invariants.
func stackRedis(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), PoolSize: 64, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestIntegrationTenThousandCyclesAcrossProcesses: 10,000 lock cycles per
// backend, from goroutines in this process and in two child processes (this
// test binary run again), on one resource. Inside each critical section the
// holder counts the holders inside, does a read-modify-write of a counter in
// Redis, and writes its token to the PostgreSQL fencing row: no overlap, no
// lost increment, no refused token.
func TestIntegrationTenThousandCyclesAcrossProcesses(t *testing.T) {
	stack.Require(t, stack.Redis, stack.Redlock, stack.Etcd, stack.Postgres)
	const children, perChild, inParent = 2, 4000, 2000 // 10,000 in all
	for _, tt := range []struct {
		backend    string
		goroutines int // per process
	}{
		// Redlock waiters poll: a few per process keep the lock busy.
		{"redlock", 4},
		// etcd waiters watch from a past revision, which the server catches up
		// every 100 ms: the queue must be deeper than 100 ms of work.
		{"etcd", 24},
	} {
		t.Run(tt.backend, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
			defer cancel()
			rdb := stackRedis(t)
			resource := fmt.Sprintf("cycles-%s-%d", tt.backend, time.Now().UnixNano())
			pool, store, err := stackFence(ctx)
			require.NoError(t, err)
			t.Cleanup(func() {
				_ = store.Delete(context.Background(), resource)
				pool.Close()
				_ = rdb.Del(context.Background(), resource+":inside", resource+":overlaps", resource+":counter", resource+":refused", resource+":ready", resource+":go").Err()
			})
			type result struct {
				out []byte
				err error
			}
			results := make(chan result, children)
			for range children {
				cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"=cycles", childBackend+"="+tt.backend, childResource+"="+resource,
					childRoutines+"="+strconv.Itoa(tt.goroutines), childCycles+"="+strconv.Itoa(perChild))
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				go func() {
					out, err := cmd.Output()
					if err != nil {
						err = fmt.Errorf("%w: %s", err, stderr.String())
					}
					results <- result{out, err}
				}()
			}
			require.Eventually(t, func() bool {
				n, _ := rdb.Get(ctx, resource+":ready").Int()
				return n == children
			}, time.Minute, 10*time.Millisecond, "children ready")
			l, closeLocker, err := stackLocker(tt.backend)
			require.NoError(t, err)
			defer closeLocker()
			start := time.Now()
			require.NoError(t, rdb.Set(ctx, resource+":go", 1, time.Hour).Err())
			require.NoError(t, cycleRun(ctx, l, rdb, store, resource, tt.goroutines, inParent))
			for range children {
				r := <-results
				require.NoError(t, r.err)
				assert.Equal(t, "done\n", string(r.out))
			}
			elapsed := time.Since(start)
			counter, err := rdb.Get(ctx, resource+":counter").Int()
			require.NoError(t, err)
			assert.Equal(t, children*perChild+inParent, counter, "no increment lost")
			for _, k := range []string{":overlaps", ":refused"} {
				n, err := rdb.Exists(ctx, resource+k).Result()
				require.NoError(t, err)
				assert.Zero(t, n, "%s: never counted", k)
			}
			rec, ok, err := store.Read(ctx, resource)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, strconv.Itoa(counter), rec.Value, "the fencing row saw every section, in order")
			t.Logf("%s: %d cycles in %v across 3 processes × %d goroutines (%.0f/s); 0 overlaps, 0 refused tokens, last token %d",
				tt.backend, counter, elapsed.Round(time.Millisecond), tt.goroutines, float64(counter)/elapsed.Seconds(), rec.Token)
		})
	}
}
