package lock

import (
	"math"
	"time"
)

// The defaults of the redsync release this module uses (v4.18.1, redsync.go
// NewMutex): a Mutex made without options locks for 8 s, tries 32 times with
// a random pause of 50 ms up to (not including) 250 ms between tries, gives
// each try expiry × 0.05 to reach the masters, and subtracts expiry × 0.01 for
// clock drift from the validity. TestRedsyncDefaults measures each one on a
// real redsync Mutex, so a release that changes them fails the test.
const (
	RedsyncExpiry        = 8 * time.Second
	RedsyncTries         = 32
	RedsyncRetryDelayMin = 50 * time.Millisecond
	RedsyncRetryDelayMax = 250 * time.Millisecond
	RedsyncDriftFactor   = 0.01
	RedsyncTimeoutFactor = 0.05
)

// Quorum is the number of masters a Redlock must win out of n: a majority,
// so two holders cannot both have one.
func Quorum(n int) int { return n/2 + 1 }

// Drift is redsync's allowance for clock drift and the safety margin in one:
// factor × ttl, truncated to the nanosecond as redsync truncates it.
func Drift(ttl time.Duration, factor float64) time.Duration {
	return time.Duration(int64(float64(ttl) * factor))
}

// Validity is how long a Redlock can be trusted after an acquisition that
// took elapsed (from before the first SET NX to after the quorum's replies):
// ttl − elapsed − Drift(ttl, factor). redsync's Until() is the acquisition's
// start plus exactly this; the lock is refused when it is not positive.
func Validity(ttl, elapsed time.Duration, driftFactor float64) time.Duration {
	return ttl - elapsed - Drift(ttl, driftFactor)
}

// MinValidity is the article's formula, TTL − (acquisition time + clock drift
// + drift safety factor), with each term given separately. With redsync's
// defaults, clockDrift + safety is Drift(ttl, RedsyncDriftFactor).
func MinValidity(ttl, acquisition, clockDrift, safety time.Duration) time.Duration {
	return ttl - (acquisition + clockDrift + safety)
}

// ClockDrift is the drift two clocks that disagree by rate (e.g. 0.002 for
// 2 ms per second) accumulate over ttl. It grows with the lock's TTL, not with
// the number of nodes.
func ClockDrift(ttl time.Duration, rate float64) time.Duration {
	return time.Duration(math.Ceil(float64(ttl) * rate))
}

// AttemptTimeout is how long one redsync try may wait for the masters:
// ttl × factor (redsync's timeout factor, 0.05 by default).
func AttemptTimeout(ttl time.Duration, factor float64) time.Duration {
	return time.Duration(int64(float64(ttl) * factor))
}

// LeaseSeconds converts a lock TTL to the whole seconds an etcd lease takes.
// Under one second is an ErrInvalid error, not 0: concurrency.WithTTL(0) keeps
// its 60 s default, 120 times the 500 ms asked for. A fraction is rounded up,
// never truncated, so the lease is never shorter than asked. The server may
// still raise the TTL to its minimum (1.5 × the election timeout, rounded up:
// 2 s by default); the lease's granted TTL is what the lock uses.
func LeaseSeconds(ttl time.Duration) (int64, error) {
	if ttl < time.Second {
		return 0, errInvalidf("etcd leases are whole seconds; ttl %v is under 1s (int(ttl.Seconds()) would be 0, and concurrency.WithTTL(0) means its 60s default)", ttl)
	}
	secs := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		secs++
	}
	return secs, nil
}
