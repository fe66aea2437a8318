package stampede

import (
	"math"
	"math/rand/v2"
	"time"
)

// XFetch decides whether a request should refresh a still-valid entry early.
//
// The rule (Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic Cache Stampede
// Prevention", VLDB 2015) is: refresh when
//
//	now − β·δ·ln(rand()) ≥ expiry
//
// where δ is how long the last recompute took and rand() is uniform in (0, 1). With
// T = expiry − now left, one request refreshes with probability exp(−T/(β·δ)): about
// 37% at T = β·δ, 5% at 3·β·δ, certainly once expired. Slow recomputes (large δ) start
// earlier; β > 1 starts earlier still, β < 1 later.
type XFetch struct {
	// Beta scales how early refreshes start; ≤ 0 means the paper's default 1.0.
	Beta float64
	// Rand returns a uniform number in [0, 1); nil means math/rand/v2's Float64.
	// Tests inject a seeded source. A value ≤ 0 is clamped to the smallest positive
	// float64, so ln never sees 0 (ln 0 = −Inf would make the gap +Inf, then NaN
	// arithmetic in some variants).
	Rand func() float64
}

// ShouldRefresh reports whether a request at now should recompute an entry that
// expires at expiry and took delta to compute last time. Expired entries always
// refresh. The comparison is done in float seconds so a sub-millisecond δ still counts.
func (x XFetch) ShouldRefresh(now time.Time, delta time.Duration, expiry time.Time) bool {
	left := expiry.Sub(now).Seconds()
	if left <= 0 {
		return true
	}
	return x.gapSeconds(delta) >= left
}

// RefreshProbability is the exact probability that one request refreshes with left
// time to expiry: exp(−left/(β·δ)). It is what the statistical test checks
// ShouldRefresh against.
func (x XFetch) RefreshProbability(left, delta time.Duration) float64 {
	if left <= 0 {
		return 1
	}
	if delta <= 0 {
		return 0
	}
	return math.Exp(-left.Seconds() / (x.beta() * delta.Seconds()))
}

func (x XFetch) gapSeconds(delta time.Duration) float64 {
	if delta <= 0 {
		return 0
	}
	r := rand.Float64()
	if x.Rand != nil {
		r = x.Rand()
	}
	switch {
	case r <= 0:
		r = math.SmallestNonzeroFloat64
	case r > 1:
		r = 1
	}
	return -x.beta() * delta.Seconds() * math.Log(r)
}

func (x XFetch) beta() float64 {
	if x.Beta <= 0 {
		return 1
	}
	return x.Beta
}
