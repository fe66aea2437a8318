package stampede

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var waitFor = fixture.WaitFor

func TestGroup1000ConcurrentMissesMakeOneBackendCall(t *testing.T) {
	const n = 1000
	var g Group[string]
	var backend atomic.Int64
	fetch := func(context.Context) (string, error) {
		backend.Add(1)
		// Hold the flight open until every caller has joined it, so the assertion
		// below is about deduplication, not about scheduling luck.
		waitFor(t, "all callers to join", func() bool { return g.Stats().Waiting == n })
		return "product-42", nil
	}

	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			v, err := g.Do(context.Background(), "product:42", 10*time.Second, fetch)
			if err == nil && v != "product-42" {
				err = fmt.Errorf("got %q", v)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := backend.Load(); got != 1 {
		t.Fatalf("backend calls = %d, want exactly 1 for %d concurrent misses", got, n)
	}
	st := g.Stats()
	if st.Calls != n || st.Executions != 1 || st.Shared != n || st.Waiting != 0 {
		t.Fatalf("stats = %+v, want Calls=%d Executions=1 Shared=%d Waiting=0", st, n, n)
	}
}

func TestGroupCallerTimeoutDoesNotCancelSharedFetch(t *testing.T) {
	var g Group[int]
	release := make(chan struct{})
	var fetchErr atomic.Value
	fetch := func(ctx context.Context) (int, error) {
		select {
		case <-release:
			return 7, nil
		case <-ctx.Done():
			fetchErr.Store(ctx.Err())
			return 0, ctx.Err()
		}
	}

	// The leader has a long timeout; the follower gives up quickly.
	leader := make(chan int, 1)
	go func() {
		v, _ := g.Do(context.Background(), "k", time.Minute, fetch)
		leader <- v
	}()
	waitFor(t, "leader to start", func() bool { return g.Stats().Waiting == 1 })

	_, err := g.Do(context.Background(), "k", 20*time.Millisecond, fetch)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("follower err = %v, want ErrTimeout wrapping DeadlineExceeded", err)
	}
	close(release)
	if v := <-leader; v != 7 {
		t.Fatalf("leader got %d, want 7: the follower's timeout must not cancel the shared fetch", v)
	}
	if e := fetchErr.Load(); e != nil {
		t.Fatalf("fetch context ended early: %v", e)
	}
	if st := g.Stats(); st.Executions != 1 || st.Timeouts != 1 {
		t.Fatalf("stats = %+v, want 1 execution and 1 timeout", st)
	}
}

func TestGroupLeaderCancelDoesNotFailFollowers(t *testing.T) {
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
	waitFor(t, "leader to start", func() bool { return g.Stats().Waiting == 1 })
	follower := make(chan string, 1)
	go func() {
		v, _ := g.Do(context.Background(), "k", time.Minute, fetch)
		follower <- v
	}()
	waitFor(t, "follower to join", func() bool { return g.Stats().Waiting == 2 })

	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader err = %v, want context.Canceled", err)
	}
	close(release)
	if v := <-follower; v != "ok" {
		t.Fatalf("follower got %q, want ok: the leader's cancellation leaked into the shared fetch", v)
	}
}

func TestGroupFetchBoundedByLeaderTimeout(t *testing.T) {
	var g Group[int]
	ended := make(chan error, 1)
	fetch := func(ctx context.Context) (int, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("fetch context has no deadline")
		}
		<-ctx.Done() // a backend that never answers
		ended <- ctx.Err()
		return 0, ctx.Err()
	}
	if _, err := g.Do(context.Background(), "k", 20*time.Millisecond, fetch); err == nil {
		t.Fatal("want an error from a hung backend")
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("fetch ended with %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hung fetch was never cancelled: later callers would wait on it forever")
	}
}

func TestGroupCanceledContextReturnsAtOnce(t *testing.T) {
	var g Group[int]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := g.Do(ctx, "k", time.Second, func(context.Context) (int, error) {
		t.Error("fetch must not run for a canceled caller")
		return 0, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestGroupErrorsAreSharedAndNotCached(t *testing.T) {
	var g Group[int]
	boom := errors.New("db down")
	var calls atomic.Int64
	fetch := func(context.Context) (int, error) { calls.Add(1); return 0, boom }
	for range 3 {
		if _, err := g.Do(context.Background(), "k", time.Second, fetch); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d: an error must not stick after its flight ends", calls.Load())
	}
}

// TestGroupManyKeysRace exercises counters and keys from many goroutines; it has its
// value under -race (the article's version fails it: it writes a plain map).
func TestGroupManyKeysRace(t *testing.T) {
	var g Group[int]
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			key := fmt.Sprintf("product:%d", i%7)
			v, err := g.Do(context.Background(), key, time.Second, func(context.Context) (int, error) { return i % 7, nil })
			if err != nil || v != i%7 {
				t.Errorf("key %s: %d, %v", key, v, err)
			}
		})
	}
	wg.Wait()
	if st := g.Stats(); st.Calls != 200 || st.Executions < 7 || st.Executions > 200 {
		t.Fatalf("stats = %+v", st)
	}
}
