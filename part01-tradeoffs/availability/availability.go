// Package availability computes the availability of composed systems and what it
// means in downtime and error budget.
//
// Availability A is the probability that a component is up, a number in [0, 1].
// Components are assumed to fail independently: that assumption is what makes the
// formulas below simple, and it is also what real outages break (a shared power
// feed, a bad config pushed everywhere at once). Treat results as upper bounds.
//
//   - Series (every component must be up):  A = A1 · A2 · … · An
//   - Parallel (any one component suffices): A = 1 − (1−A1)(1−A2)…(1−An)
//   - k-of-n (at least k must be up, e.g. for capacity): see AtLeast.
//
// Node composes these into nested trees and ranks which component dominates
// downtime; Budget turns an SLO into allowed downtime and allowed bad requests.
package availability

import (
	"fmt"
	"math"
	"time"
)

// Year is the 365-day year (8,760 h) the article uses for "downtime per year".
const Year = 365 * 24 * time.Hour

// Month is a 30-day month, the window most SLO tooling uses for monthly budgets
// (99.9% over it allows 43m12s).
const Month = 30 * 24 * time.Hour

// Series returns the availability of components that must all be up for the
// system to be up: the product of their availabilities. With no components it
// returns 1 (an empty chain never fails).
func Series(as ...float64) float64 {
	a := 1.0
	for _, x := range as {
		a *= x
	}
	return a
}

// Parallel returns the availability of redundant components where any single
// one keeps the system up: one minus the probability that all are down at once.
// With no components it returns 0 (nothing can serve).
func Parallel(as ...float64) float64 {
	down := 1.0
	for _, x := range as {
		down *= 1 - x
	}
	return 1 - down
}

// AtLeast returns the probability that at least k of the components are up,
// for components with possibly different availabilities. AtLeast(1, …) equals
// Parallel and AtLeast(len(as), …) equals Series; values in between model
// "3 replicas, 2 needed to carry peak load". k ≤ 0 returns 1, k > len(as) returns 0.
func AtLeast(k int, as ...float64) float64 {
	if k <= 0 {
		return 1
	}
	if k > len(as) {
		return 0
	}
	// up[j] = probability that exactly j of the components seen so far are up
	// (the Poisson binomial distribution, built one component at a time).
	up := make([]float64, len(as)+1)
	up[0] = 1
	for i, a := range as {
		for j := i + 1; j >= 1; j-- {
			up[j] = up[j]*(1-a) + up[j-1]*a
		}
		up[0] *= 1 - a
	}
	var p float64
	for j := k; j <= len(as); j++ {
		p += up[j]
	}
	return math.Min(p, 1)
}

// MinReplicas returns the fewest identical replicas, each up with probability
// a, for at least k of them to be up with probability target or more, and the
// availability that many achieve: "the peak needs k nodes; how many do we
// run for four nines?". It returns 0 and the best it tried when target is out
// of reach within k+1024 replicas (a = 0, say).
func MinReplicas(k int, a, target float64) (n int, achieved float64) {
	if k < 1 {
		return 0, 1
	}
	// up[j] = probability that exactly j of the n replicas so far are up,
	// grown one replica at a time as in AtLeast.
	up := []float64{1}
	for n = 1; n <= k+1024; n++ {
		up = append(up, 0)
		for j := n; j >= 1; j-- {
			up[j] = up[j]*(1-a) + up[j-1]*a
		}
		up[0] *= 1 - a
		if n < k {
			continue
		}
		achieved = 0
		for j := k; j <= n; j++ {
			achieved += up[j]
		}
		if achieved = math.Min(achieved, 1); achieved >= target {
			return n, achieved
		}
	}
	return 0, achieved
}

// Downtime returns the expected time a system of availability a is down during
// period: (1 − a) · period.
func Downtime(a float64, period time.Duration) time.Duration {
	return time.Duration(math.Round((1 - a) * float64(period)))
}

// PerComponent returns the availability each of n identical components in
// series needs for the chain to meet target: target^(1/n).
func PerComponent(target float64, n int) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return math.Pow(target, 1/float64(n))
}

// Nines returns the "number of nines" of a: −log10(1 − a), so 0.999 → 3 and
// 0.9995 → 3.3. It returns +Inf for a = 1.
func Nines(a float64) float64 {
	return -math.Log10(1 - a)
}

// Check reports an error unless a is a valid availability in [0, 1].
func Check(a float64) error {
	if math.IsNaN(a) || a < 0 || a > 1 {
		return fmt.Errorf("availability %v is outside [0, 1]", a)
	}
	return nil
}
