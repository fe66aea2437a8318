package availability

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Budget is the error budget implied by an SLO over a rolling window: the share
// of requests (or of time) that may be bad before the objective is missed.
type Budget struct {
	SLO    float64       // target fraction of good events, e.g. 0.999
	Window time.Duration // e.g. Month
}

// NewBudget validates slo and window and returns their Budget.
func NewBudget(slo float64, window time.Duration) (Budget, error) {
	if err := Check(slo); err != nil {
		return Budget{}, fmt.Errorf("slo: %w", err)
	}
	if window <= 0 {
		return Budget{}, fmt.Errorf("window %v must be positive", window)
	}
	return Budget{SLO: slo, Window: window}, nil
}

// AllowedDowntime is the time the service may be fully down within the window.
func (b Budget) AllowedDowntime() time.Duration {
	return Downtime(b.SLO, b.Window)
}

// ppb is the budget in parts per billion of events. SLOs are written in decimal
// ("99.99%") but 1−0.9999 is not exactly 0.0001 in binary floating point, so
// (1−0.9999)·1,000,000 = 99.99999999998899 and a plain floor would allow 99 bad
// requests instead of 100. Rounding to parts per billion first removes that
// error for every SLO with up to nine decimal digits.
func (b Budget) ppb() uint64 {
	return uint64(math.Round((1 - b.SLO) * 1e9))
}

// AllowedBad is the number of bad requests allowed out of total: the floor of
// (1 − SLO) · total, computed exactly.
func (b Budget) AllowedBad(total uint64) uint64 {
	hi, lo := bits.Mul64(total, b.ppb())
	q, _ := bits.Div64(hi, lo, 1e9) // hi < 1e9 because ppb ≤ 1e9, so no overflow
	return q
}

// Remaining is the fraction of the budget still unspent after bad of total
// requests failed; it goes negative once the SLO is missed. The budget is
// taken in parts per billion, as in AllowedBad, so spending exactly
// AllowedBad(total) leaves 0, not a float-error sliver below it.
func (b Budget) Remaining(bad, total uint64) float64 {
	allowed := float64(b.ppb()) * float64(total) / 1e9
	if allowed == 0 {
		if bad == 0 {
			return 1
		}
		return math.Inf(-1)
	}
	return 1 - float64(bad)/allowed
}

// BurnRate is how fast an observed error rate spends the budget: 1 spends it
// exactly over the window, 14.4 spends a 30-day budget in about two days (the
// usual fast-burn paging threshold).
func (b Budget) BurnRate(errorRate float64) float64 {
	return errorRate / (1 - b.SLO)
}
