//go:build integration

package lock

import (
	"bytes"
	"context"
	"errors"
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
//
// The run is bounded by its count, not by a wall clock: it ends when the
// 10,000 cycles are done, and fails only if no cycle completes for
// stallAfter (a lock that stopped handing over). A loaded machine makes it
// slower, not failed: a fixed 4-minute limit killed a child mid-run on one.
// What made it slow: Redlock's dozen waiters retried every 1–5 ms, each try a
// SET NX and a release on all three masters, and spent the CPU the holder
// needed (they now wait 5–25 ms); etcd's waiters watched from a past
// revision, which the server catches up every 100 ms, and each cycle granted
// and revoked a lease (lock.Etcd now shares one lease per process and
// watches from the present). The section's bookkeeping is two Redis round
// trips and one PostgreSQL write.
func TestIntegrationTenThousandCyclesAcrossProcesses(t *testing.T) {
	t.Parallel() // the longest test of the package; the others run beside it
	stack.Require(t, stack.Redis, stack.Redlock, stack.Etcd, stack.Postgres)
	const children, perChild, inParent = 2, 4000, 2000 // 10,000 in all
	for _, tt := range []struct {
		backend    string
		goroutines int // per process
	}{
		// A few waiters per process keep the lock busy: Redlock waiters
		// poll, etcd waiters are woken by the deletion ahead of them.
		{"redlock", 4},
		{"etcd", 4},
	} {
		t.Run(tt.backend, func(t *testing.T) {
			t.Parallel() // separate resources and fencing rows: the two runs overlap
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
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
				lifeline, err := cmd.StdinPipe() // closed when this test ends: the child stops
				require.NoError(t, err)
				defer lifeline.Close()
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
			go watchProgress(ctx, cancel, rdb, resource+":counter", stallAfter)
			require.NoError(t, rdb.Set(ctx, resource+":go", 1, time.Hour).Err())
			require.NoError(t, cycleRun(ctx, l, rdb, store, resource, tt.goroutines, inParent), "cause: %v", context.Cause(ctx))
			for range children {
				r := <-results
				require.NoError(t, r.err, "cause: %v", context.Cause(ctx))
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

// stallAfter is how long the cross-process runs may go without completing a
// lock cycle before they are stopped as stuck.
const stallAfter = time.Minute

// watchProgress cancels ctx if the counter at key, incremented by every
// critical section, does not move for stall; it returns when ctx ends.
func watchProgress(ctx context.Context, cancel context.CancelCauseFunc, rdb *redis.Client, key string, stall time.Duration) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, moved := int64(-1), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := rdb.Get(ctx, key).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			continue
		}
		if n != last {
			last, moved = n, time.Now()
			continue
		}
		if time.Since(moved) > stall {
			cancel(fmt.Errorf("no lock cycle completed for %v (stuck at %d)", stall, n))
			return
		}
	}
}
