package availability

import (
	"math"
	"slices"
	"time"
)

// Latencies is a sorted sample of request latencies: what a latency SLI is
// computed from ("/checkout p99 over 1 minute = 120 ms") and what a latency
// SLO is checked against ("99.9% of requests < 150 ms"). Build it with
// NewLatencies.
type Latencies []time.Duration

// NewLatencies returns a sorted copy of samples.
func NewLatencies(samples []time.Duration) Latencies {
	l := slices.Clone(samples)
	slices.Sort(l)
	return l
}

// Quantile returns the nearest-rank q-quantile: the smallest sample that at
// least a share q of all samples do not exceed, so Quantile(0.99) is the p99
// and is always a latency that was measured. q is clamped to [0, 1]; an
// empty sample returns 0.
func (l Latencies) Quantile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	// The tolerance keeps q·n from rounding up past an exact rank:
	// 0.999·1000 is 998.9999999999999 in float64, not 999.
	rank := int(math.Ceil(q*float64(len(l)) - 1e-9))
	return l[min(max(rank, 1), len(l))-1]
}

// Under counts the samples strictly below threshold: the good events of an
// SLO written "< threshold".
func (l Latencies) Under(threshold time.Duration) int {
	n, _ := slices.BinarySearch(l, threshold)
	return n
}
