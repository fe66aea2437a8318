package stampede

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
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
			if math.Abs(got-want) > 4*se+1e-3 {
				t.Errorf("β=%v T=%.1fδ: refresh rate %.4f, want %.4f ± %.4f", beta, leftInDeltas, got, want, 4*se)
			}
			if got <= prev {
				t.Errorf("β=%v T=%.1fδ: rate %.4f did not rise above %.4f as expiry approached", beta, leftInDeltas, got, prev)
			}
			prev = got
		}
	}
}

func TestXFetchAlwaysRefreshesOnceExpired(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := XFetch{Rand: rng.Float64}
	now := time.Now()
	for range 1000 {
		if !x.ShouldRefresh(now, time.Millisecond, now) || !x.ShouldRefresh(now, time.Millisecond, now.Add(-time.Second)) {
			t.Fatal("an expired entry must always refresh")
		}
	}
}

func TestXFetchBetaDefaultsToOne(t *testing.T) {
	one := XFetch{Beta: 1}.RefreshProbability(time.Second, time.Second)
	for _, b := range []float64{0, -3} {
		if p := (XFetch{Beta: b}).RefreshProbability(time.Second, time.Second); p != one {
			t.Fatalf("β=%v gives p=%v, want the β=1 value %v", b, p, one)
		}
	}
}

func TestXFetchClampsRandAtOrBelowZero(t *testing.T) {
	now := time.Now()
	delta := time.Millisecond
	for _, r := range []float64{0, -0.5, math.Copysign(0, -1)} {
		x := XFetch{Rand: func() float64 { return r }}
		if gap := x.gapSeconds(delta); gap <= 0 || math.IsNaN(gap) || math.IsInf(gap, 0) {
			t.Fatalf("rand=%v: gap %v s, want a large finite gap", r, gap)
		}
		// ln(smallest float64) ≈ −744.4, so the gap is ≈ 744·δ: refresh at 700δ, not at 800δ.
		if !x.ShouldRefresh(now, delta, now.Add(700*delta)) {
			t.Fatalf("rand=%v: no refresh at 700δ before expiry", r)
		}
		if x.ShouldRefresh(now, delta, now.Add(800*delta)) {
			t.Fatalf("rand=%v: refresh at 800δ: the clamp let the gap run to infinity", r)
		}
	}
	// rand = 1 gives ln 1 = 0: no early refresh at all.
	x := XFetch{Rand: func() float64 { return 1 }}
	if x.ShouldRefresh(now, delta, now.Add(time.Nanosecond)) {
		t.Fatal("rand=1 must not refresh before expiry")
	}
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
	if article != 0 {
		t.Fatalf("article version refreshed %d times; the errata expects 0 (δ truncated to 0 ms)", article)
	}
	want := x.RefreshProbability(expiry.Sub(now), delta)
	t.Logf("δ=900µs, 2ms before expiry, %d draws: article %d refreshes, this code %d (%.1f%%, model %.1f%%)",
		draws, article, ours, 100*float64(ours)/draws, 100*want)
	if got := float64(ours) / draws; math.Abs(got-want) > 0.015 {
		t.Fatalf("refresh rate %.3f at T=2ms, δ=900µs, want ≈ %.3f", got, want)
	}
}
