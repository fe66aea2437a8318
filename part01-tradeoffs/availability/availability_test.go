package availability

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeriesParallelArticleFigures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		got          float64
		want         float64
		wantDowntime time.Duration // per Year
		tol          time.Duration
	}{
		{
			// Article: "99.9% × 99.9% × 99.9% = 99.7%". The article's "~2.6 hours
			// of downtime/year" is off by 10×: 8,760 h × 0.002997 = 26.25 h.
			name: "3 × 99.9% in series", got: Series(0.999, 0.999, 0.999),
			want: 0.997002999, wantDowntime: 26*time.Hour + 15*time.Minute + 13*time.Second, tol: time.Second,
		},
		{
			// Article: "1 − (0.001 × 0.001) = 99.9999% — only ~31 seconds of downtime/year".
			name: "2 × 99.9% in parallel", got: Parallel(0.999, 0.999),
			want: 0.999999, wantDowntime: 31536 * time.Millisecond, tol: time.Millisecond,
		},
		{
			name: "5 × 99.99% in series meets a 99.95% SLO", got: Series(0.9999, 0.9999, 0.9999, 0.9999, 0.9999),
			want: 0.99950009999, wantDowntime: 4*time.Hour + 22*time.Minute + 44*time.Second, tol: time.Second,
		},
		{name: "empty series never fails", got: Series(), want: 1, wantDowntime: 0},
		{name: "empty parallel never serves", got: Parallel(), want: 0, wantDowntime: Year},
		{name: "a dead replica adds nothing", got: Parallel(0.99, 0), want: 0.99, wantDowntime: Year / 100, tol: time.Millisecond},
		{name: "a perfect component in series is free", got: Series(0.99, 1), want: 0.99, wantDowntime: Year / 100, tol: time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// 1e-10 separates 99.9999% from 99.9998%.
			assert.InDelta(t, tt.want, tt.got, 1e-10, "availability")
			assert.InDelta(t, tt.wantDowntime, Downtime(tt.got, Year), float64(tt.tol), "downtime/year")
		})
	}
}

// The erratum: "~2.6 hours of downtime/year" is neither the yearly figure
// (26.25 h) nor the monthly one (2.19 h over a 30-day month).
func TestSeriesDowntimeIsNotTwoPointSixHours(t *testing.T) {
	t.Parallel()
	a := Series(0.999, 0.999, 0.999)
	assert.InDelta(t, 26.25, Downtime(a, Year).Hours(), 0.005, "per year")
	assert.InDelta(t, 2.158, Downtime(a, Month).Hours(), 0.0005, "per 30-day month")
	assert.InDelta(t, 2.188, Downtime(a, Year/12).Hours(), 0.0005, "per average month (a twelfth of the year), 2.19 h rounded")
	assert.Greater(t, Downtime(a, Year).Hours()/2.6, 10.0, "the article's figure is 10× too small")
}

func TestPerComponent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target float64
		n      int
		want   float64
	}{
		{0.9995, 5, 0.99989998}, // article rounds this up to 99.99% each
		{0.999, 3, 0.99966656},
		{0.99, 1, 0.99},
	}
	for _, tt := range tests {
		got := PerComponent(tt.target, tt.n)
		assert.InDelta(t, tt.want, got, 1e-8, "PerComponent(%v, %d)", tt.target, tt.n)
		// Round trip: n components at exactly that availability meet the target.
		assert.InDelta(t, tt.target, Series(repeat(got, tt.n)...), 1e-12, "Series of %d × %.8f", tt.n, got)
	}
	assert.True(t, math.IsNaN(PerComponent(0.99, 0)), "PerComponent with n=0")
}

func TestAtLeast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		k    int
		as   []float64
		want float64
	}{
		// 2 of 3 at 0.9: P(3 up) + P(exactly 2 up) = 0.729 + 3·0.081 = 0.972.
		{"2 of 3 at 90%", 2, []float64{0.9, 0.9, 0.9}, 0.972},
		{"1 of 2 equals parallel", 1, []float64{0.999, 0.999}, 0.999999},
		{"2 of 2 equals series", 2, []float64{0.9, 0.8}, 0.72},
		// Mixed: P(both of the first two up, or exactly one of them and the third).
		{"2 of 3 mixed", 2, []float64{0.9, 0.8, 0.5}, 0.9*0.8 + 0.9*0.2*0.5 + 0.1*0.8*0.5},
		{"k = 0 is always up", 0, []float64{0.1}, 1},
		{"k > n is never up", 3, []float64{1, 1}, 0},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, AtLeast(tt.k, tt.as...), 1e-12, tt.name)
	}
}

func TestNinesAndCheck(t *testing.T) {
	t.Parallel()
	assert.InDelta(t, 3, Nines(0.999), 1e-9)
	assert.True(t, math.IsInf(Nines(1), 1), "Nines(1) = +Inf")
	for _, bad := range []float64{-0.1, 1.0001, math.NaN()} {
		assert.Error(t, Check(bad), "Check(%v)", bad)
	}
	for _, ok := range []float64{0, 0.5, 1} {
		assert.NoError(t, Check(ok))
	}
}

// unit maps any float64 the fuzzer invents onto [0, 1], so every input is used.
func unit(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0.5
	}
	return math.Abs(math.Mod(x, 1))
}

// FuzzCompositionBounds checks the properties that hold for any availabilities:
// redundancy never hurts and a chain is never stronger than its weakest link.
func FuzzCompositionBounds(f *testing.F) {
	f.Add(0.999, 0.999, 0.999)
	f.Add(0.0, 1.0, 0.5)
	f.Add(0.9999, 0.1, 1e-9)
	f.Add(0.3, 0.3, 0.999999999)
	const eps = 1e-12
	f.Fuzz(func(t *testing.T, x, y, z float64) {
		a, b, c := unit(x), unit(y), unit(z)
		par, ser := Parallel(a, b, c), Series(a, b, c)
		require.GreaterOrEqual(t, par, math.Max(a, math.Max(b, c))-eps, "parallel ≥ max component")
		require.LessOrEqual(t, ser, math.Min(a, math.Min(b, c))+eps, "series ≤ min component")
		for _, v := range []float64{par, ser, AtLeast(2, a, b, c)} {
			require.True(t, v >= -eps && v <= 1+eps, "result %v outside [0, 1]", v)
		}
		// k-of-n sits between series (k = n) and parallel (k = 1) and falls as k grows.
		k1, k2, k3 := AtLeast(1, a, b, c), AtLeast(2, a, b, c), AtLeast(3, a, b, c)
		require.InDelta(t, par, k1, 1e-9, "1 of n is parallel")
		require.InDelta(t, ser, k3, 1e-9, "n of n is series")
		require.True(t, k2 <= k1+eps && k3 <= k2+eps, "AtLeast falls as k grows: %v %v %v", k1, k2, k3)
		// De Morgan: parallel availability is one minus the series of unavailabilities.
		require.InDelta(t, par, 1-Series(1-a, 1-b, 1-c), 1e-12, "duality")
		// Adding a component never helps a chain and never hurts redundancy.
		require.GreaterOrEqual(t, Series(a, b), ser-eps, "a longer chain")
		require.LessOrEqual(t, Parallel(a, b), par+eps, "more redundancy")
	})
}
