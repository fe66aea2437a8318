package l7

import "sync/atomic"

// RetryBudget caps retries across all requests of a proxy, as Envoy's
// retry_budget does: a retry may start while the requests that are retrying
// number fewer than Percent% of the requests in flight, or fewer than Min
// (so a quiet proxy can still retry). Without it, MaxAttempts 3 lets a
// failing fleet receive up to 3× its load exactly when it can least take it.
type RetryBudget struct {
	percent float64
	min     int64

	active   atomic.Int64 // requests in flight
	retrying atomic.Int64 // of those, requests that have retried
}

// NewRetryBudget returns a budget of percent% of requests in flight (Envoy's
// default is 20) with a floor of min concurrent retries (Envoy's: 3).
func NewRetryBudget(percent float64, min int64) *RetryBudget {
	return &RetryBudget{percent: max(percent, 0), min: max(min, 0)}
}

// Retrying is the number of requests retrying now.
func (b *RetryBudget) Retrying() int64 { return b.retrying.Load() }

func (b *RetryBudget) begin() { b.active.Add(1) }
func (b *RetryBudget) end()   { b.active.Add(-1) }

// tryRetry takes a slot if the budget has one.
func (b *RetryBudget) tryRetry() bool {
	for {
		r := b.retrying.Load()
		limit := max(b.min, int64(b.percent*float64(b.active.Load())/100))
		if r >= limit {
			return false
		}
		if b.retrying.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

func (b *RetryBudget) retryDone() { b.retrying.Add(-1) }
