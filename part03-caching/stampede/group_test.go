package stampede

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/singleflight"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) {
	if prefix := os.Getenv(lockChildEnv); prefix != "" { // a child of TestIntegrationLockAcrossProcesses
		peers, _ := strconv.Atoi(os.Getenv(lockChildPeers))
		os.Exit(lockChild(prefix, peers == 0, peers))
	}
	leakcheck.VerifyTestMain(m)
}

// concurrentCalls starts n callers of g.Do on one key whose fetch blocks until the
// test releases it, waits (synctest.Wait) until every caller has joined the flight,
// and returns the release function and the callers' results.
func concurrentCalls(t *testing.T, g *Group[string], ctx context.Context, timeout time.Duration, n int) (fetches *atomic.Int64, release func() []error) {
	t.Helper()
	fetches = &atomic.Int64{}
	gate := make(chan struct{})
	fetch := func(context.Context) (string, error) {
		fetches.Add(1)
		<-gate
		return "product-42", nil
	}
	errs := make(chan error, n)
	for range n {
		go func() {
			v, err := g.Do(ctx, "product:42", timeout, fetch)
			if err == nil && v != "product-42" {
				err = fmt.Errorf("got %q", v)
			}
			errs <- err
		}()
	}
	synctest.Wait() // every caller is parked: one in fetch, the others on the flight
	return fetches, func() []error {
		close(gate)
		out := make([]error, n)
		for i := range out {
			out[i] = <-errs
		}
		return out
	}
}

// TestGroup1000ConcurrentMissesMakeOneBackendCall runs both paths: with a timeout
// (DoChan + select) and the fast path (context.Background(), no timeout: x/sync Do).
func TestGroup1000ConcurrentMissesMakeOneBackendCall(t *testing.T) {
	const n = 1000
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{{"timeout", 10 * time.Second}, {"fast path", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var g Group[string]
				fetches, release := concurrentCalls(t, &g, context.Background(), tc.timeout, n)
				assert.Equal(t, int64(n), g.Stats().Waiting)
				for _, err := range release() {
					require.NoError(t, err)
				}
				assert.Equal(t, int64(1), fetches.Load(), "backend calls for %d concurrent misses", n)
				assert.Equal(t, Stats{Calls: n, Executions: 1, Shared: n}, g.Stats())
			})
		})
	}
}

func TestGroupCallerTimeoutDoesNotCancelSharedFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[int]
		release := make(chan struct{})
		fetchErr := make(chan error, 1)
		fetch := func(ctx context.Context) (int, error) {
			select {
			case <-release:
				return 7, nil
			case <-ctx.Done():
				fetchErr <- ctx.Err()
				return 0, ctx.Err()
			}
		}
		// The leader has a long timeout; the follower gives up quickly.
		leader := make(chan int, 1)
		go func() {
			v, _ := g.Do(context.Background(), "k", time.Minute, fetch)
			leader <- v
		}()
		synctest.Wait()
		_, err := g.Do(context.Background(), "k", 20*time.Millisecond, fetch)
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		close(release)
		assert.Equal(t, 7, <-leader, "the follower's timeout must not cancel the shared fetch")
		assert.Empty(t, fetchErr, "fetch context ended early")
		st := g.Stats()
		assert.Equal(t, int64(1), st.Executions)
		assert.Equal(t, int64(1), st.Timeouts)
	})
}

func TestGroupLeaderCancelDoesNotFailFollowers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string]
		release := make(chan struct{})
		fetch := func(ctx context.Context) (string, error) {
			select {
			case <-release:
				return "ok", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		lctx, cancel := context.WithCancel(context.Background())
		leaderErr := make(chan error, 1)
		go func() {
			_, err := g.Do(lctx, "k", time.Minute, fetch)
			leaderErr <- err
		}()
		synctest.Wait()
		follower := make(chan string, 1)
		go func() {
			v, _ := g.Do(context.Background(), "k", time.Minute, fetch)
			follower <- v
		}()
		synctest.Wait()
		require.Equal(t, int64(2), g.Stats().Waiting)

		cancel()
		require.ErrorIs(t, <-leaderErr, context.Canceled)
		close(release)
		assert.Equal(t, "ok", <-follower, "the leader's cancellation leaked into the shared fetch")
	})
}

func TestGroupFetchBoundedByLeaderTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[int]
		ended := make(chan error, 1)
		hadDeadline := make(chan bool, 1)
		fetch := func(ctx context.Context) (int, error) {
			_, ok := ctx.Deadline()
			hadDeadline <- ok
			<-ctx.Done() // a backend that never answers
			ended <- ctx.Err()
			return 0, ctx.Err()
		}
		_, err := g.Do(context.Background(), "k", 20*time.Millisecond, fetch)
		require.Error(t, err, "want an error from a hung backend")
		assert.True(t, <-hadDeadline, "fetch context has no deadline")
		synctest.Wait()
		require.Len(t, ended, 1, "the hung fetch was never cancelled: later callers would wait on it forever")
		assert.ErrorIs(t, <-ended, context.DeadlineExceeded)
	})
}

func TestGroupCanceledContextReturnsAtOnce(t *testing.T) {
	var g Group[int]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ran atomic.Bool
	_, err := g.Do(ctx, "k", time.Second, func(context.Context) (int, error) { ran.Store(true); return 0, nil })
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, ran.Load(), "fetch must not run for a canceled caller")
}

func TestGroupErrorsAreSharedAndNotCached(t *testing.T) {
	for _, timeout := range []time.Duration{time.Second, 0} {
		var g Group[int]
		boom := errors.New("db down")
		var calls atomic.Int64
		fetch := func(context.Context) (int, error) { calls.Add(1); return 0, boom }
		for range 3 {
			_, err := g.Do(context.Background(), "k", timeout, fetch)
			require.ErrorIs(t, err, boom)
		}
		assert.Equal(t, int64(3), calls.Load(), "timeout %v: an error must not stick after its flight ends", timeout)
	}
}

// TestGroupNilInterfaceValue: a fetch returning a nil interface V comes back as nil,
// not as a failed type assertion (the article's result.Val.(string) would panic on
// a nil any if the fetch's type ever changed to an interface).
func TestGroupNilInterfaceValue(t *testing.T) {
	for _, timeout := range []time.Duration{time.Second, 0} {
		var g Group[error]
		v, err := g.Do(context.Background(), "k", timeout, func(context.Context) (error, error) { return nil, nil })
		require.NoError(t, err)
		assert.Nil(t, v)
	}
}

// TestGroupManyKeysRace exercises counters and keys from many goroutines, both
// paths sharing flights; it has its value under -race (the article's version
// fails it: it writes a plain map). The derived counters must match what ran:
// Executions is the number of fetches, nobody is left Waiting.
func TestGroupManyKeysRace(t *testing.T) {
	var g Group[int]
	var wg sync.WaitGroup
	var fetches atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			key := fmt.Sprintf("product:%d", i%7)
			timeout := time.Duration(i%2) * time.Second // both paths
			v, err := g.Do(context.Background(), key, timeout, func(context.Context) (int, error) {
				fetches.Add(1)
				runtime.Gosched() // widen the flight so later callers join it
				return i % 7, nil
			})
			assert.NoError(t, err, key)
			assert.Equal(t, i%7, v, key)
		})
	}
	wg.Wait()
	st := g.Stats()
	assert.Equal(t, int64(200), st.Calls)
	assert.Equal(t, fetches.Load(), st.Executions)
	assert.GreaterOrEqual(t, st.Executions, int64(7))
	assert.Zero(t, st.Waiting)
	t.Logf("200 calls on 7 keys: %d fetches, %d shared", st.Executions, st.Shared)
}

// TestSharedIsTrueForTheLeaderToo is the erratum on the article's note that
// result.Shared "is true when the current goroutine received a result from another
// goroutine's execution (not its own)": x/sync sets it for every caller of a flight
// that had duplicates, the one whose fn ran included. Counting Shared therefore
// counts n for n callers of one flight; the calls saved are Calls − Executions.
func TestSharedIsTrueForTheLeaderToo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g singleflight.Group
		release := make(chan struct{})
		leader := make(chan singleflight.Result, 1)
		go func() {
			v, err, shared := g.Do("k", func() (any, error) { <-release; return "v", nil })
			leader <- singleflight.Result{Val: v, Err: err, Shared: shared}
		}()
		synctest.Wait() // the leader is inside its fn
		follower := g.DoChan("k", func() (any, error) { return "never runs", nil })
		synctest.Wait()
		close(release)
		l, f := <-leader, <-follower
		assert.Equal(t, "v", f.Val)
		assert.True(t, f.Shared)
		assert.True(t, l.Shared, "the goroutine whose fn ran also gets Shared = true")
	})
}

// TestBlockedCallersHoldNoOSThread is the erratum on "DoChan is non-blocking — doesn't
// hold the goroutine's OS thread" as a contrast with Do: a goroutine blocked in Do
// (sync.WaitGroup.Wait) or on DoChan's channel is parked by the Go scheduler and
// holds no OS thread either way. 1,000 callers of each, all blocked on one slow
// flight, create no more threads than a handful (GOMAXPROCS plus runtime helpers).
func TestBlockedCallersHoldNoOSThread(t *testing.T) {
	const n = 1000
	threads := pprof.Lookup("threadcreate")
	for _, api := range []string{"Do", "DoChan"} {
		t.Run(api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var g singleflight.Group
				release := make(chan struct{})
				fn := func() (any, error) { <-release; return 1, nil }
				before := threads.Count()
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() {
						if api == "Do" {
							_, _, _ = g.Do("k", fn)
						} else {
							<-g.DoChan("k", fn)
						}
					})
				}
				synctest.Wait() // all n callers are parked on the one flight
				created := threads.Count() - before
				close(release)
				wg.Wait()
				t.Logf("%d callers blocked in %s: %d OS threads created", n, api, created)
				assert.Less(t, created, 50, "blocked %s callers held OS threads", api)
			})
		})
	}
}
