package availability_test

import (
	"fmt"
	"time"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/availability"
)

func ExampleSeries() {
	a := availability.Series(0.999, 0.999, 0.999)
	d := availability.Downtime(a, availability.Year)
	fmt.Printf("%.4f%% → %.2f h of downtime a year\n", 100*a, d.Hours())
	// Output: 99.7003% → 26.25 h of downtime a year
}

func ExampleParallel() {
	a := availability.Parallel(0.999, 0.999)
	fmt.Printf("%.4f%% → %.1f s a year\n", 100*a, availability.Downtime(a, availability.Year).Seconds())
	// Output: 99.9999% → 31.5 s a year
}

func ExampleNode_Dominant() {
	sys := availability.InSeries("system",
		availability.Component("dns", 0.9999),
		availability.InParallel("regions",
			availability.Component("region-a", 0.999),
			availability.Component("region-b", 0.999)),
	)
	dom := sys.Dominant()
	fmt.Printf("%s causes %.1f%% of the downtime\n", dom.Path, 100*dom.Share)
	// Output: system/dns causes 99.0% of the downtime
}

func ExampleBudget() {
	b, _ := availability.NewBudget(0.999, availability.Month)
	fmt.Println(b.AllowedDowntime(), b.AllowedBad(10_000_000))
	// Output: 43m12s 10000
}

// A 500k RPS peak on nodes serving 50k RPS each needs 10 nodes up; how many
// must run, each up 99.9%, for the peak to be served 99.999% of the time?
func ExampleMinReplicas() {
	n, a := availability.MinReplicas(10, 0.999, 0.99999)
	fmt.Printf("%d nodes: %.6f%%\n", n, 100*a)
	// Output: 12 nodes: 99.999978%
}

func ExampleLatencies_Quantile() {
	l := availability.NewLatencies([]time.Duration{120 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond})
	fmt.Println(l.Quantile(0.5), l.Quantile(0.99), l.Under(150*time.Millisecond))
	// Output: 4ms 120ms 4
}
