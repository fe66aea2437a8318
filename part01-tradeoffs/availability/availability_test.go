package availability

import (
	"math"
	"testing"
	"time"
)

// near compares floats with an absolute tolerance; callers pick one well below
// the unavailability they care about (1e-10 separates 99.9999% from 99.9998%).
func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

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
			// Article: "99.9% × 99.9% × 99.9% = 99.7003%". The article's "~2.6 hours
			// of downtime per year" is off by 10×: 8,760 h × 0.002997 = 26.25 h.
			name: "3 × 99.9% in series", got: Series(0.999, 0.999, 0.999),
			want: 0.997002999, wantDowntime: 26*time.Hour + 15*time.Minute + 13*time.Second, tol: time.Second,
		},
		{
			// Article: "2 × 99.9% in parallel = 99.9999% ≈ 31.5 seconds/year".
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
			if !near(tt.got, tt.want, 1e-10) {
				t.Errorf("availability = %.10f, want %.10f", tt.got, tt.want)
			}
			if d := Downtime(tt.got, Year); (d - tt.wantDowntime).Abs() > tt.tol {
				t.Errorf("downtime/year = %v, want %v ± %v", d, tt.wantDowntime, tt.tol)
			}
		})
	}
}

func TestSeriesDowntimeIsNotTwoPointSixHours(t *testing.T) {
	t.Parallel()
	// The article's figure, kept as a regression test for the erratum.
	got := Downtime(Series(0.999, 0.999, 0.999), Year).Hours()
	if got < 26.2 || got > 26.3 {
		t.Fatalf("3 × 99.9%% in series: %.3f h/year, want about 26.25 h", got)
	}
	if math.Abs(got-2.6) < 1 {
		t.Fatalf("got the article's 2.6 h/year; the correct figure is 26.25 h")
	}
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
		if !near(got, tt.want, 1e-8) {
			t.Errorf("PerComponent(%v, %d) = %.8f, want %.8f", tt.target, tt.n, got, tt.want)
		}
		// Round trip: n components at exactly that availability meet the target.
		chain := make([]float64, tt.n)
		for i := range chain {
			chain[i] = got
		}
		if !near(Series(chain...), tt.target, 1e-12) {
			t.Errorf("Series of %d × %.8f = %.10f, want %v", tt.n, got, Series(chain...), tt.target)
		}
	}
	if !math.IsNaN(PerComponent(0.99, 0)) {
		t.Error("PerComponent with n=0 should be NaN")
	}
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
		if got := AtLeast(tt.k, tt.as...); !near(got, tt.want, 1e-12) {
			t.Errorf("%s: AtLeast(%d, %v) = %.12f, want %.12f", tt.name, tt.k, tt.as, got, tt.want)
		}
	}
}

func TestNinesAndCheck(t *testing.T) {
	t.Parallel()
	if got := Nines(0.999); !near(got, 3, 1e-9) {
		t.Errorf("Nines(0.999) = %v, want 3", got)
	}
	if got := Nines(1); !math.IsInf(got, 1) {
		t.Errorf("Nines(1) = %v, want +Inf", got)
	}
	for _, bad := range []float64{-0.1, 1.0001, math.NaN()} {
		if Check(bad) == nil {
			t.Errorf("Check(%v) = nil, want an error", bad)
		}
	}
	for _, ok := range []float64{0, 0.5, 1} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%v) = %v", ok, err)
		}
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
		if par < math.Max(a, math.Max(b, c))-eps {
			t.Errorf("Parallel(%v, %v, %v) = %v < max component", a, b, c, par)
		}
		if ser > math.Min(a, math.Min(b, c))+eps {
			t.Errorf("Series(%v, %v, %v) = %v > min component", a, b, c, ser)
		}
		for _, v := range []float64{par, ser, AtLeast(2, a, b, c)} {
			if v < -eps || v > 1+eps {
				t.Errorf("result %v outside [0, 1] for %v, %v, %v", v, a, b, c)
			}
		}
		// k-of-n sits between series (k = n) and parallel (k = 1) and falls as k grows.
		k1, k2, k3 := AtLeast(1, a, b, c), AtLeast(2, a, b, c), AtLeast(3, a, b, c)
		if !near(k1, par, 1e-9) || !near(k3, ser, 1e-9) || k2 > k1+eps || k3 > k2+eps {
			t.Errorf("AtLeast not monotone: k=1 %v (parallel %v), k=2 %v, k=3 %v (series %v)", k1, par, k2, k3, ser)
		}
		// De Morgan: parallel availability is one minus the series of unavailabilities.
		if !near(par, 1-Series(1-a, 1-b, 1-c), 1e-12) {
			t.Errorf("Parallel(%v, %v, %v) = %v breaks duality", a, b, c, par)
		}
		// Adding a component never helps a chain and never hurts redundancy.
		if Series(a, b) < ser-eps || Parallel(a, b) > par+eps {
			t.Errorf("adding %v changed series %v→%v or parallel %v→%v the wrong way", c, Series(a, b), ser, Parallel(a, b), par)
		}
	})
}
