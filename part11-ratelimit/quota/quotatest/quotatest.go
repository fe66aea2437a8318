// Package quotatest checks that a limiter's Decisions tell the truth: a
// client that trusts Remaining, RetryAfter and Reset is admitted exactly when
// they say. It replays request histories at chosen instants, so every
// limiter needs a way to be told the time: local ones take it as an
// argument, Redis ones read a stopped miniredis clock.
package quotatest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// Clocked is a limiter that can be asked at a given instant.
type Clocked interface {
	AllowAt(key string, at time.Time) (quota.Decision, error)
}

// Arrivals returns n sorted request offsets within span: random instants,
// a third of them repeated (bursts at one instant), from seed.
func Arrivals(seed uint64, n int, span time.Duration) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, seed))
	out := make([]time.Duration, 0, n)
	for len(out) < n {
		d := time.Duration(rng.Int64N(int64(span)))
		out = append(out, d)
		for rng.IntN(3) == 0 && len(out) < n {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// Replay sends one request per offset for key and returns the decisions.
func Replay(t *testing.T, l Clocked, key string, base time.Time, offsets []time.Duration) []quota.Decision {
	t.Helper()
	out := make([]quota.Decision, len(offsets))
	for i, off := range offsets {
		d, err := l.AllowAt(key, base.Add(off))
		require.NoError(t, err, "request %d at +%v", i, off)
		out[i] = d
	}
	return out
}

// Admitted returns the instants of the admitted requests.
func Admitted(base time.Time, offsets []time.Duration, ds []quota.Decision) []time.Time {
	var at []time.Time
	for i, d := range ds {
		if d.Allowed {
			at = append(at, base.Add(offsets[i]))
		}
	}
	return at
}

// CheckExact replays offsets on a fresh key, then for up to probes of the
// decisions replays the history up to that decision on another fresh key and
// checks it against the limiter itself, at precision (the limiter's clock
// resolution, or its rounding):
//
//   - Remaining more requests at the same instant are admitted, one more is not;
//   - after them, a request just before Reset is refused, one at Reset admitted;
//   - after a refusal, a request just before RetryAfter is refused, one at
//     RetryAfter admitted.
func CheckExact(t *testing.T, l Clocked, base time.Time, offsets []time.Duration, probes int, precision time.Duration) {
	t.Helper()
	key := 0
	fresh := func() string { key++; return fmt.Sprintf("exact-%d-%d", time.Now().UnixNano(), key) }
	history := Replay(t, l, fresh(), base, offsets)
	step := max(1, len(offsets)/probes)
	for i := 0; i < len(offsets); i += step {
		d, at := history[i], base.Add(offsets[i])
		replayTo := func() string {
			k := fresh()
			got := Replay(t, l, k, base, offsets[:i+1])
			require.Equal(t, d, got[i], "replaying the same history gives the same decision")
			return k
		}
		allow := func(k string, when time.Time) bool {
			d, err := l.AllowAt(k, when)
			require.NoError(t, err)
			return d.Allowed
		}
		if d.Allowed {
			k := replayTo()
			for j := range d.Remaining {
				require.True(t, allow(k, at), "request %d: Remaining %d, but extra request %d was refused", i, d.Remaining, j+1)
			}
			assert.False(t, allow(k, at), "request %d: Remaining %d, yet one more was admitted", i, d.Remaining)
			if d.Reset > precision {
				assert.False(t, allow(k, at.Add(d.Reset-precision)), "request %d: admitted before Reset %v", i, d.Reset)
			}
			assert.True(t, allow(k, at.Add(d.Reset+precision)), "request %d: refused at Reset %v", i, d.Reset)
			continue
		}
		assert.Zero(t, d.Remaining, "request %d: refused with Remaining > 0", i)
		k := replayTo()
		if d.RetryAfter > precision {
			assert.False(t, allow(k, at.Add(d.RetryAfter-precision)), "request %d: admitted before RetryAfter %v", i, d.RetryAfter)
		}
		assert.True(t, allow(k, at.Add(d.RetryAfter+precision)), "request %d: refused after RetryAfter %v", i, d.RetryAfter)
	}
}
