package retry_test

import (
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// The article's ExponentialBackoff and RetryWithIdempotency, modelled here
// with the same arithmetic and control flow (its code is not copied): the
// delay is Base·2^attempt (a float, converted to a Duration) plus
// rand.Int63n(JitterCap), clamped to MaxDelay; the loop calls fn up to
// MaxRetries times, returns nil on a status under 500, asks NextDelay
// otherwise, returns "exhausted" when it says no more, and sleeps with
// time.Sleep. The errata tests below assert what the README says they do.

type articleBackoff struct {
	base, max, jitter time.Duration
	retries           int
}

func (b articleBackoff) next(attempt int) (time.Duration, bool) {
	if attempt >= b.retries {
		return 0, false
	}
	d := time.Duration(float64(b.base)*math.Pow(2, float64(attempt))) + time.Duration(rand.Int63n(int64(b.jitter)))
	if d > b.max {
		d = b.max
	}
	return d, true
}

func articleRetry(key string, b articleBackoff, fn func(key string) (int, error)) error {
	for attempt := 0; attempt < b.retries; attempt++ {
		status, err := fn(key)
		if err == nil && status < 500 {
			return nil
		}
		d, more := b.next(attempt)
		if !more {
			return fmt.Errorf("exhausted %d retries", attempt+1)
		}
		time.Sleep(d)
	}
	return nil
}

// Erratum 14: a JitterCap of 0 (no jitter wanted) panics.
func TestArticleZeroJitterPanics(t *testing.T) {
	b := articleBackoff{base: 100 * time.Millisecond, max: 2 * time.Second, retries: 3}
	assert.PanicsWithValue(t, "invalid argument to Int63n", func() { b.next(0) })
}

// Erratum 15: nil when every attempt failed, nil for 409 and 429 after one
// call, and no call at all with MaxRetries 0.
func TestArticleRetryReturnsNil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := articleBackoff{base: 10 * time.Millisecond, max: time.Second, jitter: time.Millisecond, retries: 3}
		for _, tt := range []struct {
			status, calls int
		}{
			{http.StatusServiceUnavailable, 3},
			{http.StatusConflict, 1},
			{http.StatusTooManyRequests, 1},
		} {
			calls := 0
			err := articleRetry("k", b, func(string) (int, error) { calls++; return tt.status, nil })
			assert.NoError(t, err, "status %d", tt.status)
			assert.Equal(t, tt.calls, calls, "status %d", tt.status)
		}
		b.retries, b.jitter = 0, time.Millisecond
		calls := 0
		assert.NoError(t, articleRetry("k", b, func(string) (int, error) { calls++; return 0, nil }))
		assert.Zero(t, calls, "MaxRetries 0 never calls fn")
	})
}

// Erratum 16: Base·2^37 (100 ms) overflows the float-to-int64 conversion to
// the minimum int64, and the clamp to MaxDelay lets a negative delay through.
func TestArticleDelayOverflowsNegative(t *testing.T) {
	b := articleBackoff{base: 100 * time.Millisecond, max: 2 * time.Second, jitter: time.Millisecond, retries: 100}
	d, _ := b.next(36)
	assert.Equal(t, 2*time.Second, d, "attempt 36 is clamped")
	d, _ = b.next(37)
	assert.Negative(t, d, "attempt 37: no wait at all")
}

// Erratum 17: no context. A caller whose deadline is 50 ms away gets its
// answer after every sleep has run (on a fake clock here: the waits are the
// code's).
func TestArticleRetryIgnoresTheCallersDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := articleBackoff{base: time.Second, max: 2 * time.Second, jitter: time.Millisecond, retries: 4}
		start := time.Now()
		deadline := start.Add(50 * time.Millisecond) // what the caller had; nothing to pass it to
		calls := 0
		_ = articleRetry("k", b, func(string) (int, error) { calls++; return http.StatusServiceUnavailable, nil })
		assert.Equal(t, 4, calls)
		assert.Greater(t, time.Since(start), 3*time.Second, "slept past the deadline")
		assert.True(t, time.Now().After(deadline))
	})
}
