// Package quota is the contract every limiter in this chapter meets, so the
// HTTP middleware can put a local token bucket, a Redis sliding-window log or
// GCRA behind a route without knowing which.
//
// A Decision carries what the response headers need (limit, remaining,
// when to retry, when the quota next grows) and the limiter's own clock at
// the moment it decided, so tests can check "never more than Limit in any
// Window" against the clock that actually made the decision (Redis TIME for
// the Redis limiters, not the application's).
package quota

import (
	"context"
	"fmt"
	"time"
)

// Policy is a quota: Limit requests per Window. Burst matters to the
// rate-based algorithms (token bucket, GCRA): how many requests may arrive at
// once after a quiet spell; 0 means Limit.
type Policy struct {
	Limit  int
	Window time.Duration
	Burst  int
}

// MaxLimit bounds Limit so that every limiter's arithmetic stays exact
// (Redis scripts compute in float64 microseconds).
const MaxLimit = 1_000_000

// Validate reports a policy no limiter can enforce.
func (p Policy) Validate() error {
	switch {
	case p.Limit < 1 || p.Limit > MaxLimit:
		return fmt.Errorf("quota: limit %d is out of range 1..%d", p.Limit, MaxLimit)
	case p.Window < time.Millisecond || p.Window > 31*24*time.Hour:
		return fmt.Errorf("quota: window %v is out of range 1ms..744h", p.Window)
	case p.Burst < 0 || p.Burst > MaxLimit:
		return fmt.Errorf("quota: burst %d is out of range 0..%d", p.Burst, MaxLimit)
	}
	return nil
}

// BurstSize is Burst, or Limit when Burst is 0.
func (p Policy) BurstSize() int {
	if p.Burst > 0 {
		return p.Burst
	}
	return p.Limit
}

// Interval is Window / Limit: the steady-state gap between two admitted
// requests (the token refill period, GCRA's emission interval).
func (p Policy) Interval() time.Duration { return p.Window / time.Duration(p.Limit) }

func (p Policy) String() string {
	s := fmt.Sprintf("%d per %v", p.Limit, p.Window)
	if p.Burst > 0 && p.Burst != p.Limit {
		s += fmt.Sprintf(" (burst %d)", p.Burst)
	}
	return s
}

// Decision is one check's answer.
type Decision struct {
	Allowed bool
	// Limit is the most requests a client can have admitted at once
	// (X-RateLimit-Limit): the policy's Limit, or its Burst when that is
	// larger (token bucket, GCRA), so it is never below Remaining.
	Limit int
	// Remaining is how many more requests would be admitted right now.
	Remaining int
	// RetryAfter, when Allowed is false, is how long until a request can be
	// admitted again.
	RetryAfter time.Duration
	// Reset is how long until the quota grows again if the client used all of
	// Remaining now: within Reset the client can use no more than Remaining
	// (the IETF RateLimit field's t parameter).
	Reset time.Duration
	// At is the limiter's clock when it decided.
	At time.Time
}

// Limiter is a keyed rate limiter: one quota per key (a client address, an
// API key, a route and a user).
type Limiter interface {
	// Allow checks and, when admitted, counts one request for key. An error
	// means the limiter could not decide (its store is down or slow); what
	// to do then is the caller's policy (fail open or fail closed).
	Allow(ctx context.Context, key string) (Decision, error)
	// Policy is the quota this limiter enforces, for the response headers.
	Policy() Policy
}

// MaxInWindow returns the largest number of the sorted instants at that fall
// in one window (t−window, t]: the figure a "never more than Limit per
// Window" promise is about. Algorithms that bound the rate instead (token
// bucket, GCRA) or approximate the window (the sliding counter) can exceed
// their Limit here; the chapter's accuracy table shows by how much.
func MaxInWindow(at []time.Time, window time.Duration) int {
	most, lo := 0, 0
	for hi := range at {
		for !at[lo].After(at[hi].Add(-window)) {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}
