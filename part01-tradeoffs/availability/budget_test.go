package availability

import (
	"math"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		slo          float64
		window       time.Duration
		total        uint64
		wantBad      uint64
		wantDowntime time.Duration
	}{
		// The article's SLO: 99.9% of /checkout requests under 150 ms per month.
		{"99.9% / 30 days", 0.999, Month, 10_000_000, 10_000, 43*time.Minute + 12*time.Second},
		// 1−0.9999 is 0.00009999999999998899 in float64: a naive floor gives 99.
		{"99.99% rounds exactly", 0.9999, Month, 1_000_000, 100, 4*time.Minute + 19*time.Second + 200*time.Millisecond},
		{"99.5% SLA-style", 0.995, Month, 1_000_000, 5_000, 3*time.Hour + 36*time.Minute},
		{"fraction floors", 0.999, Month, 1_999, 1, 43*time.Minute + 12*time.Second},
		{"100% allows nothing", 1, Year, 1 << 40, 0, 0},
		{"0% allows everything", 0, Year, 12345, 12345, Year},
		{"huge totals do not overflow", 0.999, Year, math.MaxUint64, math.MaxUint64 / 1000, 8*time.Hour + 45*time.Minute + 36*time.Second},
	}
	for _, tt := range tests {
		b, err := NewBudget(tt.slo, tt.window)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := b.AllowedBad(tt.total); got != tt.wantBad {
			t.Errorf("%s: AllowedBad(%d) = %d, want %d", tt.name, tt.total, got, tt.wantBad)
		}
		if got := b.AllowedDowntime(); (got - tt.wantDowntime).Abs() > time.Millisecond {
			t.Errorf("%s: AllowedDowntime = %v, want %v", tt.name, got, tt.wantDowntime)
		}
	}
}

func TestBudgetRemainingAndBurnRate(t *testing.T) {
	t.Parallel()
	b, err := NewBudget(0.999, Month)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Remaining(2_500, 10_000_000); !near(got, 0.75, 1e-9) {
		t.Errorf("Remaining after a quarter of the budget = %v, want 0.75", got)
	}
	if got := b.Remaining(20_000, 10_000_000); !near(got, -1, 1e-9) {
		t.Errorf("Remaining at twice the budget = %v, want -1", got)
	}
	if got := b.BurnRate(0.0144); !near(got, 14.4, 1e-9) {
		t.Errorf("BurnRate(1.44%%) = %v, want 14.4", got)
	}
	perfect := Budget{SLO: 1, Window: Month}
	if got := perfect.Remaining(0, 100); got != 1 {
		t.Errorf("100%% SLO with no failures: Remaining = %v, want 1", got)
	}
	if got := perfect.Remaining(1, 100); !math.IsInf(got, -1) {
		t.Errorf("100%% SLO with a failure: Remaining = %v, want -Inf", got)
	}
}

func TestNewBudgetRejectsNonsense(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		slo    float64
		window time.Duration
	}{{1.1, Month}, {-0.1, Month}, {math.NaN(), Month}, {0.999, 0}, {0.999, -time.Hour}} {
		if _, err := NewBudget(tt.slo, tt.window); err == nil {
			t.Errorf("NewBudget(%v, %v) = nil error", tt.slo, tt.window)
		}
	}
}

// Spending exactly AllowedBad meets the SLO, so the budget must not read as
// overspent: Remaining has to agree with AllowedBad, float error included.
func TestRemainingAgreesWithAllowedBad(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		slo   float64
		total uint64
	}{{0.9999, 1_000_000}, {0.999, 10_000_000}, {0.995, 1_000_000}, {0.99999, 100_000_000}} {
		b, err := NewBudget(tt.slo, Month)
		if err != nil {
			t.Fatal(err)
		}
		allowed := b.AllowedBad(tt.total)
		if got := b.Remaining(allowed, tt.total); got < 0 {
			t.Errorf("SLO %v: Remaining(AllowedBad = %d, %d) = %v, want >= 0 (the SLO is met)", tt.slo, allowed, tt.total, got)
		}
		if got := b.Remaining(allowed+1, tt.total); got >= 0 {
			t.Errorf("SLO %v: Remaining(%d, %d) = %v, want < 0 (one over the budget)", tt.slo, allowed+1, tt.total, got)
		}
	}
}
