package availability

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBudget(tt.slo, tt.window)
			require.NoError(t, err)
			assert.Equal(t, tt.wantBad, b.AllowedBad(tt.total), "AllowedBad(%d)", tt.total)
			assert.InDelta(t, tt.wantDowntime, b.AllowedDowntime(), float64(time.Millisecond), "AllowedDowntime")
		})
	}
}

func TestBudgetRemainingAndBurnRate(t *testing.T) {
	t.Parallel()
	b, err := NewBudget(0.999, Month)
	require.NoError(t, err)
	assert.InDelta(t, 0.75, b.Remaining(2_500, 10_000_000), 1e-9, "after a quarter of the budget")
	assert.InDelta(t, -1, b.Remaining(20_000, 10_000_000), 1e-9, "at twice the budget")
	assert.InDelta(t, 14.4, b.BurnRate(0.0144), 1e-9, "BurnRate(1.44%)")
	perfect := Budget{SLO: 1, Window: Month}
	assert.Equal(t, 1.0, perfect.Remaining(0, 100), "100% SLO with no failures")
	assert.True(t, math.IsInf(perfect.Remaining(1, 100), -1), "100% SLO with a failure")
}

func TestNewBudgetRejectsNonsense(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		slo    float64
		window time.Duration
	}{{1.1, Month}, {-0.1, Month}, {math.NaN(), Month}, {0.999, 0}, {0.999, -time.Hour}} {
		_, err := NewBudget(tt.slo, tt.window)
		assert.Error(t, err, "NewBudget(%v, %v)", tt.slo, tt.window)
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
		require.NoError(t, err)
		allowed := b.AllowedBad(tt.total)
		assert.GreaterOrEqual(t, b.Remaining(allowed, tt.total), 0.0, "SLO %v: spending exactly AllowedBad meets it", tt.slo)
		assert.Less(t, b.Remaining(allowed+1, tt.total), 0.0, "SLO %v: one over the budget", tt.slo)
	}
}
