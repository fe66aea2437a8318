package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func newPool[T any](t *testing.T, cfg Config[T], process func(context.Context, T) error) *Pool[T] {
	t.Helper()
	p, err := New(t.Context(), cfg, process)
	require.NoError(t, err)
	return p
}

// A full buffer blocks Submit until a worker frees a slot; the wait is
// counted and timed.
func TestSubmitBlocksWhileFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPool(t, Config[int]{Workers: 1, Buffer: 2}, func(context.Context, int) error { <-release; return nil })
		for i := range 3 { // one in the worker, two in the buffer
			require.NoError(t, p.Submit(t.Context(), i))
			synctest.Wait() // the worker takes item 0 before item 2 comes
		}
		synctest.Wait()
		assert.Equal(t, 2, p.Stats().Depth)

		submitted := make(chan error, 1)
		go func() { submitted <- p.Submit(context.Background(), 3) }()
		synctest.Wait()
		select {
		case err := <-submitted:
			require.FailNow(t, "Submit returned while the buffer was full", "%v", err)
		default:
		}
		time.Sleep(250 * time.Millisecond) // the producer waits for as long as the worker is stuck
		release <- struct{}{}
		require.NoError(t, <-submitted)
		close(release)
		require.NoError(t, p.Shutdown(t.Context()))
		s := p.Stats()
		assert.Equal(t, int64(1), s.BlockedSubmits)
		assert.Equal(t, 250*time.Millisecond, s.Blocked, "fake clock: exactly the time the worker was stuck")
		assert.Equal(t, int64(4), s.Processed)
		assert.Equal(t, 2, s.MaxDepth)
	})
}

// A blocked Submit gives up with ctx, and with ErrClosed when Shutdown
// begins; neither item is accepted.
func TestBlockedSubmitEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPool(t, Config[int]{Workers: 1}, func(context.Context, int) error { <-release; return nil })
		require.NoError(t, p.Submit(t.Context(), 0)) // the worker holds it
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		assert.ErrorIs(t, p.Submit(ctx, 1), context.DeadlineExceeded)

		blocked := make(chan error, 1)
		go func() { blocked <- p.Submit(context.Background(), 2) }()
		synctest.Wait()
		shut := make(chan error, 1)
		go func() { shut <- p.Shutdown(context.Background()) }()
		assert.ErrorIs(t, <-blocked, ErrClosed)
		close(release)
		require.NoError(t, <-shut)
		assert.ErrorIs(t, p.Submit(t.Context(), 3), ErrClosed)
		assert.False(t, p.TrySubmit(4))
		s := p.Stats()
		assert.Equal(t, int64(1), s.Submitted)
		assert.Equal(t, int64(1), s.Processed)
	})
}

// Shutdown processes everything accepted before it returns.
func TestShutdownDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var done atomic.Int64
		p := newPool(t, Config[int]{Workers: 4, Buffer: 100}, func(context.Context, int) error {
			time.Sleep(10 * time.Millisecond)
			done.Add(1)
			return nil
		})
		for i := range 100 {
			require.NoError(t, p.Submit(t.Context(), i))
		}
		start := time.Now()
		require.NoError(t, p.Shutdown(t.Context()))
		assert.Equal(t, int64(100), done.Load(), "every accepted item ran before Shutdown returned")
		assert.LessOrEqual(t, time.Since(start), 250*time.Millisecond, "100 items × 10 ms on 4 workers")
	})
}

// A drain that runs out of time cancels the work in flight and says how many
// accepted items were never processed; the counts add up.
func TestShutdownDeadlineReportsAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, Config[int]{Workers: 2, Buffer: 50}, func(ctx context.Context, _ int) error {
			select {
			case <-time.After(100 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		for i := range 50 {
			require.NoError(t, p.Submit(t.Context(), i))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
		defer cancel()
		err := p.Shutdown(ctx)
		s := p.Stats()
		assert.Equal(t, int64(4), s.Processed, "2 workers × 2 items in 250 ms")
		assert.Equal(t, int64(2), s.Failed, "the two in flight were cancelled")
		assert.Equal(t, int64(44), s.Abandoned)
		assert.Equal(t, s.Submitted, s.Processed+s.Failed+s.Abandoned)
		assert.ErrorContains(t, err, "drain cut short (context deadline exceeded): 44 accepted items not processed")
	})
}

// Errors reach OnError with their item, or Shutdown's error without it.
func TestErrorsAreReported(t *testing.T) {
	boom := errors.New("boom")
	process := func(_ context.Context, i int) error {
		if i%10 == 0 {
			return fmt.Errorf("item %d: %w", i, boom)
		}
		return nil
	}
	var mu sync.Mutex
	var failed []int
	p := newPool(t, Config[int]{Workers: 3, Buffer: 5, OnError: func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		failed = append(failed, i)
		assert.ErrorIs(t, err, boom)
	}}, process)
	for i := range 100 {
		require.NoError(t, p.Submit(t.Context(), i))
	}
	require.NoError(t, p.Shutdown(t.Context()), "OnError took the errors")
	assert.ElementsMatch(t, []int{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}, failed)
	assert.Equal(t, Stats{Submitted: 100, Processed: 90, Failed: 10}, withoutGauges(p.Stats()))

	p = newPool(t, Config[int]{Workers: 3, Buffer: 5}, process)
	for i := range 100 {
		require.NoError(t, p.Submit(t.Context(), i))
	}
	err := p.Shutdown(t.Context())
	assert.ErrorIs(t, err, boom)
	assert.ErrorContains(t, err, "10 items failed; first: item ")
}

func withoutGauges(s Stats) Stats {
	s.Depth, s.MaxDepth, s.BlockedSubmits, s.Blocked = 0, 0, 0, 0
	return s
}

func TestNewRejectsBadConfig(t *testing.T) {
	nop := func(context.Context, int) error { return nil }
	for _, tt := range []struct {
		cfg  Config[int]
		fn   func(context.Context, int) error
		want string
	}{
		{Config[int]{Workers: 0}, nop, "Workers = 0"},
		{Config[int]{Workers: 1, Buffer: -1}, nop, "Buffer = -1"},
		{Config[int]{Workers: 1}, nil, "process is nil"},
	} {
		_, err := New(t.Context(), tt.cfg, tt.fn)
		assert.ErrorContains(t, err, tt.want)
	}
	_, err := NewOrdered[string, int](t.Context(), 0, 1, nil, nop)
	assert.ErrorContains(t, err, "lanes = 0")
}

// Per-key order holds with keys spread over lanes, and the goroutine count
// stays at the number of lanes however many keys go through.
func TestOrderedKeepsPerKeyOrderInBoundedMemory(t *testing.T) {
	type event struct{ key, seq int }
	var mu sync.Mutex
	last := map[int]int{}
	var outOfOrder atomic.Int64
	before := runtime.NumGoroutine()
	o, err := NewOrdered[int](t.Context(), 8, 16, nil, func(_ context.Context, e event) error {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := last[e.key]; ok && e.seq != prev+1 {
			outOfOrder.Add(1)
		}
		last[e.key] = e.seq
		return nil
	})
	require.NoError(t, err)
	const keys, perKey = 10_000, 5
	var wg sync.WaitGroup
	for g := range 4 { // four producers, each owning a quarter of the keys
		wg.Go(func() {
			for seq := range perKey {
				for k := g; k < keys; k += 4 {
					assert.NoError(t, o.Submit(t.Context(), k, event{k, seq}))
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, runtime.NumGoroutine()-before, 8+1+8, "8 lanes (+ their waiters), not one goroutine per key")
	require.NoError(t, o.Shutdown(t.Context()))
	assert.Zero(t, outOfOrder.Load())
	assert.Len(t, last, keys)
	s := o.Stats()
	assert.Equal(t, int64(keys*perKey), s.Processed)
	assert.LessOrEqual(t, s.MaxDepth, 16)
}

// A key always lands on the same lane; keys spread over all lanes.
func TestOrderedLanes(t *testing.T) {
	o, err := NewOrdered[string, int](t.Context(), 4, 1, nil, func(context.Context, int) error { return nil })
	require.NoError(t, err)
	defer func() { require.NoError(t, o.Shutdown(t.Context())) }()
	seen := map[int]bool{}
	for i := range 100 {
		k := fmt.Sprintf("order-%d", i)
		assert.Equal(t, o.Lane(k), o.Lane(k))
		seen[o.Lane(k)] = true
	}
	assert.Len(t, seen, 4)
}

// Once New's context ends, Submit refuses items instead of accepting them
// for workers that would abandon them.
func TestSubmitAfterThePoolsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		p, err := New(ctx, Config[int]{Workers: 1, Buffer: 4}, func(context.Context, int) error { return nil })
		require.NoError(t, err)
		require.NoError(t, p.Submit(t.Context(), 1))
		synctest.Wait() // processed
		cancel()
		assert.ErrorIs(t, p.Submit(t.Context(), 2), context.Canceled)
		require.NoError(t, p.Shutdown(t.Context()))
		assert.Equal(t, Stats{Submitted: 1, Processed: 1}, withoutGauges(p.Stats()))
	})
}

// Ordered.Shutdown stops every lane's intake at once: while one lane is
// still draining, a Submit to another lane is refused, not accepted after
// the shutdown began (and then abandoned if the drain runs out of time).
func TestOrderedShutdownStopsEveryLaneAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, err := NewOrdered[string](t.Context(), 2, 4, nil, func(_ context.Context, d time.Duration) error {
			time.Sleep(d)
			return nil
		})
		require.NoError(t, err)
		keys := map[int]string{}
		for i := 0; len(keys) < 2; i++ {
			k := fmt.Sprintf("order-%d", i)
			keys[o.Lane(k)] = k
		}
		require.NoError(t, o.Submit(t.Context(), keys[0], time.Second)) // lane 0 drains for a second
		done := make(chan error, 1)
		go func() { done <- o.Shutdown(t.Context()) }()
		synctest.Wait() // Shutdown has begun: lane 0 is draining
		assert.ErrorIs(t, o.Submit(t.Context(), keys[1], time.Millisecond), ErrClosed, "lane 1 refuses")
		require.NoError(t, <-done)
		assert.Equal(t, int64(1), o.Stats().Processed)
	})
}
