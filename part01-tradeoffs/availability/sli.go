package availability

import (
	"cmp"
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

// Timed is one request of a run: when it started, counted from the start of
// the run, and how long it took.
type Timed struct {
	At, Took time.Duration
}

// Window is one window of a run and the latencies of the requests that
// started in it.
type Window struct {
	Start     time.Duration // from the start of the run
	Latencies Latencies
}

// Windows groups requests into consecutive windows of length width by start
// time, as an SLI "p99 latency over 1 minute" is computed: one Latencies per
// window that saw a request, in time order. A p99 over a whole run is the
// SLI of one window only when the run fits in it. width must be positive.
func Windows(reqs []Timed, width time.Duration) []Window {
	if width <= 0 {
		panic("availability: Windows needs a positive width")
	}
	by := map[time.Duration][]time.Duration{}
	for _, r := range reqs {
		start := r.At - r.At%width
		by[start] = append(by[start], r.Took)
	}
	out := make([]Window, 0, len(by))
	for start, d := range by {
		out = append(out, Window{Start: start, Latencies: NewLatencies(d)})
	}
	slices.SortFunc(out, func(a, b Window) int { return cmp.Compare(a.Start, b.Start) })
	return out
}
