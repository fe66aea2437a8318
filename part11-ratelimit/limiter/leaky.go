package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// ErrQueueFull is Leaky's answer when a caller would have to wait longer
// than MaxDelay: the bucket is full, the request overflows.
var ErrQueueFull = errors.New("limiter: leaky bucket full")

// Leaky is a leaky bucket as a queue without the queue: callers leave it one
// Interval apart, in arrival order, and a caller who would wait longer than
// MaxDelay is refused at once. Its whole state is the time the next caller may
// leave, updated with compare-and-swap, so there is no lock, no goroutine, no
// ticker and no allocation. It smooths outbound calls to a fragile
// dependency; it is not keyed (one per dependency).
//
// MaxDelay 0 makes it a meter: a request is admitted only if the previous one
// left at least an Interval ago, so the output never bursts. The queue depth
// is MaxDelay / Interval callers.
type Leaky struct {
	interval int64 // ns
	maxDelay int64 // ns
	epoch    time.Time
	next     atomic.Int64 // ns since epoch at which the next caller may leave
}

// NewLeaky returns a leaky bucket that lets p.Limit callers leave per
// p.Window (p.Burst is ignored: a leaky bucket does not burst) and queues at
// most maxDelay of them.
func NewLeaky(p quota.Policy, maxDelay time.Duration) (*Leaky, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if maxDelay < 0 {
		return nil, fmt.Errorf("limiter: maxDelay %v is negative", maxDelay)
	}
	l := &Leaky{interval: int64(p.Interval()), maxDelay: int64(maxDelay), epoch: time.Now()}
	l.next.Store(math.MinInt64 / 2) // nobody has left yet, at any time before or after epoch
	return l, nil
}

// Reserve takes the next place in the queue at time now and returns how long
// the caller must wait before it may go, or ok=false (nothing taken) if that
// wait would exceed MaxDelay.
func (l *Leaky) Reserve(now time.Time) (wait time.Duration, ok bool) {
	t := int64(now.Sub(l.epoch))
	for {
		next := l.next.Load()
		slot := max(next, t)
		if slot-t > l.maxDelay {
			return time.Duration(slot - t), false
		}
		if l.next.CompareAndSwap(next, slot+l.interval) {
			return time.Duration(slot - t), true
		}
	}
}

// Wait blocks until the caller may go, or returns ErrQueueFull at once, or
// ctx's error if it ends first. A cancelled caller gives its place back only
// if nobody queued behind it; otherwise its slot stays empty.
func (l *Leaky) Wait(ctx context.Context) error {
	now := time.Now()
	wait, ok := l.Reserve(now)
	if !ok {
		return ErrQueueFull
	}
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		mine := int64(now.Sub(l.epoch)) + int64(wait)
		l.next.CompareAndSwap(mine+l.interval, mine)
		return ctx.Err()
	}
}
