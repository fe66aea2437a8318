package stampede

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestXFetchProbabilityRisesTowardExpiry draws ShouldRefresh many times at several
// distances from expiry with a fixed seed, and checks the refresh rate (1) rises toward
// expiry and (2) matches exp(−T/(β·δ)) within 4 standard errors.
func TestXFetchProbabilityRisesTowardExpiry(t *testing.T) {
	const draws = 20000
	delta := 40 * time.Millisecond
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, beta := range []float64{1, 2} {
		rng := rand.New(rand.NewPCG(1, 2))
		x := XFetch{Beta: beta, Rand: rng.Float64}
		prev := -1.0
		for _, leftInDeltas := range []float64{6, 3, 2, 1, 0.5, 0.1} {
			left := time.Duration(leftInDeltas * float64(delta))
			expiry := now.Add(left)
			hits := 0
			for range draws {
				if x.ShouldRefresh(now, delta, expiry) {
					hits++
				}
			}
			got := float64(hits) / draws
			want := x.RefreshProbability(left, delta)
			se := math.Sqrt(want * (1 - want) / draws)
			assert.InDelta(t, want, got, 4*se+1e-3, "β=%v T=%.1fδ: refresh rate", beta, leftInDeltas)
			assert.Greater(t, got, prev, "β=%v T=%.1fδ: the rate did not rise as expiry approached", beta, leftInDeltas)
			prev = got
		}
	}
}

func TestXFetchAlwaysRefreshesOnceExpired(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := XFetch{Rand: rng.Float64}
	now := time.Now()
	for range 1000 {
		require.True(t, x.ShouldRefresh(now, time.Millisecond, now), "an entry at its expiry must refresh")
		require.True(t, x.ShouldRefresh(now, time.Millisecond, now.Add(-time.Second)), "an expired entry must refresh")
	}
}

func TestXFetchBetaDefaultsToOne(t *testing.T) {
	one := XFetch{Beta: 1}.RefreshProbability(time.Second, time.Second)
	for _, b := range []float64{0, -3} {
		assert.Equal(t, one, XFetch{Beta: b}.RefreshProbability(time.Second, time.Second), "β=%v", b)
	}
}

func TestXFetchClampsRandAtOrBelowZero(t *testing.T) {
	now := time.Now()
	delta := time.Millisecond
	for _, r := range []float64{0, -0.5, math.Copysign(0, -1)} {
		x := XFetch{Rand: func() float64 { return r }}
		gap := x.gapSeconds(delta)
		require.False(t, gap <= 0 || math.IsNaN(gap) || math.IsInf(gap, 0), "rand=%v: gap %v s, want a large finite gap", r, gap)
		// ln(smallest float64) ≈ −744.4, so the gap is ≈ 744·δ: refresh at 700δ, not at 800δ.
		assert.True(t, x.ShouldRefresh(now, delta, now.Add(700*delta)), "rand=%v: no refresh at 700δ before expiry", r)
		assert.False(t, x.ShouldRefresh(now, delta, now.Add(800*delta)), "rand=%v: refresh at 800δ: the clamp let the gap run to infinity", r)
	}
	// rand = 1 gives ln 1 = 0: no early refresh at all.
	x := XFetch{Rand: func() float64 { return 1 }}
	assert.False(t, x.ShouldRefresh(now, delta, now.Add(time.Nanosecond)), "rand=1 must not refresh before expiry")
}

// articleShouldRefresh is the article's version: δ kept as integer milliseconds.
func articleShouldRefresh(now time.Time, delta time.Duration, expiry time.Time, r float64) bool {
	deltaMs := delta.Milliseconds() // 800µs → 0
	gapMs := -1.0 * float64(deltaMs) * math.Log(r)
	return float64(now.UnixMilli())+gapMs >= float64(expiry.UnixMilli())
}

// TestXFetchSubMillisecondDelta is the errata: a backend that answers in 900µs (an
// indexed primary-key lookup, say) never refreshes early in the article's version.
func TestXFetchSubMillisecondDelta(t *testing.T) {
	const draws = 10000
	delta := 900 * time.Microsecond
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expiry := now.Add(2 * time.Millisecond) // p = exp(−2/0.9) ≈ 0.108
	rng := rand.New(rand.NewPCG(5, 6))
	x := XFetch{Rand: rng.Float64}
	ours, article := 0, 0
	for range draws {
		r := rng.Float64()
		if articleShouldRefresh(now, delta, expiry, r) {
			article++
		}
		if x.ShouldRefresh(now, delta, expiry) {
			ours++
		}
	}
	require.Zero(t, article, "article version refreshed; the errata expects 0 (δ truncated to 0 ms)")
	want := x.RefreshProbability(expiry.Sub(now), delta)
	t.Logf("δ=900µs, 2ms before expiry, %d draws: article %d refreshes, this code %d (%.1f%%, model %.1f%%)",
		draws, article, ours, 100*float64(ours)/draws, 100*want)
	assert.InDelta(t, want, float64(ours)/draws, 0.015, "refresh rate at T=2ms, δ=900µs")
}
