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

// articleShouldRefresh models the article's ShouldRefresh with Beta = 1.0,
// the value its comment calls typical.
func articleShouldRefresh(now time.Time, delta time.Duration, expiry time.Time, r float64) bool {
	return articleShouldRefreshBeta(now, 1, delta, expiry, r)
}

// articleShouldRefreshBeta models the article's ShouldRefresh: δ read as whole
// milliseconds, the gap β·δ·(−ln r) computed in float milliseconds and then
// converted to a time.Duration (truncated to whole milliseconds) before it is
// added to now and compared with After. beta is the entry's Beta field.
func articleShouldRefreshBeta(now time.Time, beta float64, delta time.Duration, expiry time.Time, r float64) bool {
	if r <= 0 {
		r = 1e-9
	}
	deltaMs := float64(delta.Milliseconds()) // 900µs → 0
	gap := time.Duration(-beta*deltaMs*math.Log(r)) * time.Millisecond
	return now.Add(gap).After(expiry)
}

// TestArticleXFetchZeroBetaNeverRefreshesEarly: Beta is a field of the
// article's XFetchEntry ("Typically 1.0"), and nothing sets it, so an entry
// built with the other three fields has Beta = 0, a gap of 0, and refreshes
// only once it has expired: δ = 50 ms, 10 ms before expiry, 0 early refreshes
// in 10,000 calls, where Beta = 1 gives exp(−10/50) = 81.9%. XFetch{} takes a
// zero Beta as 1 (XFetch.beta).
func TestArticleXFetchZeroBetaNeverRefreshesEarly(t *testing.T) {
	const draws = 10_000
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	delta, expiry := 50*time.Millisecond, now.Add(10*time.Millisecond)
	rng := rand.New(rand.NewPCG(3, 4))
	zero, one := 0, 0
	for range draws {
		r := rng.Float64()
		if articleShouldRefreshBeta(now, 0, delta, expiry, r) {
			zero++
		}
		if articleShouldRefreshBeta(now, 1, delta, expiry, r) {
			one++
		}
	}
	x := XFetch{Rand: rng.Float64}
	ours := 0
	for range draws {
		if x.ShouldRefresh(now, delta, expiry) {
			ours++
		}
	}
	t.Logf("10 ms before expiry, δ = 50 ms: Beta 0 %d, Beta 1 %d, XFetch{} %d of %d", zero, one, ours, draws)
	assert.Zero(t, zero, "a zero Beta refreshes early")
	se := math.Sqrt(0.25 / draws)
	assert.InDelta(t, math.Exp(-0.2), float64(one)/draws, 5*se)
	assert.InDelta(t, math.Exp(-0.2), float64(ours)/draws, 5*se, "XFetch{} reads a zero Beta as 1")
	assert.True(t, articleShouldRefreshBeta(now, 0, delta, now.Add(-time.Nanosecond), 0.5), "and refreshes once expired")
}

// TestArticleXFetchSubMillisecondDeltaNeverRefreshes is the errata: a backend
// that answers in 900µs (an indexed primary-key lookup, say) never refreshes
// early in the article's version.
func TestArticleXFetchSubMillisecondDeltaNeverRefreshes(t *testing.T) {
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

// TestArticleXFetchTruncatesTheWholeGap: the article converts the whole gap
// β·δ·(−ln r), not only δ, to whole milliseconds before it compares. With
// δ = 1 ms (kept whole) and 0.5 ms left, a refresh needs a gap of at least
// 1 ms, i.e. −ln r ≥ 1: probability e^−1 = 36.8%, where the model says
// exp(−0.5) = 60.7%. Every gap is rounded down, so early refreshes come later
// and rarer for any δ of a few milliseconds.
func TestArticleXFetchTruncatesTheWholeGap(t *testing.T) {
	const draws = 100_000
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 8))
	x := XFetch{Rand: rng.Float64}
	for _, tc := range []struct {
		delta, left time.Duration
		article     float64 // the probability the article's rounding leaves
	}{
		{time.Millisecond, 500 * time.Microsecond, math.Exp(-1)},                // gap ≥ 1 ms
		{time.Millisecond, 1500 * time.Microsecond, math.Exp(-2)},               // gap ≥ 2 ms
		{3 * time.Millisecond, 2500 * time.Microsecond, math.Exp(-1)},           // 3·(−ln r) ≥ 3: −ln r ≥ 1
		{3 * time.Millisecond, 4500 * time.Microsecond, math.Exp(-5.0 / 3)},     // 3·(−ln r) ≥ 5
		{20 * time.Millisecond, 30500 * time.Microsecond, math.Exp(-31.0 / 20)}, // 20·(−ln r) ≥ 31
	} {
		expiry := now.Add(tc.left)
		article, ours := 0, 0
		for range draws {
			if articleShouldRefresh(now, tc.delta, expiry, rng.Float64()) {
				article++
			}
			if x.ShouldRefresh(now, tc.delta, expiry) {
				ours++
			}
		}
		model := x.RefreshProbability(tc.left, tc.delta)
		se := math.Sqrt(0.25 / draws)
		t.Logf("δ=%v, %v before expiry: article %.1f%% (rounding predicts %.1f%%), this code %.1f%%, model %.1f%%",
			tc.delta, tc.left, 100*float64(article)/draws, 100*tc.article, 100*float64(ours)/draws, 100*model)
		assert.InDelta(t, tc.article, float64(article)/draws, 5*se, "δ=%v, %v left: the article's rate", tc.delta, tc.left)
		assert.InDelta(t, model, float64(ours)/draws, 5*se, "δ=%v, %v left: this code's rate", tc.delta, tc.left)
	}
}
