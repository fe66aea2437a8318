package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/availability"
)

// articleSeriesDowntime is the article's claim for 3 × 99.9% in series, kept
// only to print beside the computed figure: it is 10× too small.
const articleSeriesDowntime = 2.6 * float64(time.Hour)

// avgMonth is a twelfth of the 365-day year (730 h), the month that matches a
// "per year" figure; Budget uses the 30-day month SLO tools use.
const avgMonth = availability.Year / 12

func availabilityDemo(_ context.Context, w io.Writer, _ options) error {
	fmt.Fprintln(w, "== Composite availability (independent failures, 365-day year) ==")
	tw := table(w)
	fmt.Fprintln(tw, "case\tavailability\tdowntime/year\tdowntime/month (year ÷ 12)\tthe article says")
	series := availability.Series(0.999, 0.999, 0.999)
	fmt.Fprintf(tw, "3 × 99.9%% in series\t%.4f%%\t%s\t%s\t\"99.7%%\", \"adds ~2.6 hours of downtime/year\" (%.1f× too small)\n",
		100*series, human(availability.Downtime(series, availability.Year)), human(availability.Downtime(series, avgMonth)),
		float64(availability.Downtime(series, availability.Year))/articleSeriesDowntime)
	par := availability.Parallel(0.999, 0.999)
	fmt.Fprintf(tw, "2 × 99.9%% in parallel\t%.4f%%\t%s\t%s\t\"99.9999%%\", \"only ~31 seconds of downtime/year\"\n",
		100*par, human(availability.Downtime(par, availability.Year)), human(availability.Downtime(par, avgMonth)))
	five := availability.Series(0.9999, 0.9999, 0.9999, 0.9999, 0.9999)
	fmt.Fprintf(tw, "5 × 99.99%% in series\t%.4f%%\t%s\t%s\t\"at least 99.99%%\" each for a 99.95%% SLO\n",
		100*five, human(availability.Downtime(five, availability.Year)), human(availability.Downtime(five, avgMonth)))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "each of 5 chained services needs ≥ %.6f%% for 99.95%% end to end (the article rounds up to 99.99%%)\n\n",
		100*availability.PerComponent(0.9995, 5))

	if err := budgetDemo(w); err != nil {
		return err
	}
	return treeDemo(w)
}

func budgetDemo(w io.Writer) error {
	const slo, requests = 0.999, 10_000_000
	b, err := availability.NewBudget(slo, availability.Month)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, `== Error budget: SLO "99.9% of requests must complete in < 150ms per calendar month" (30 days) ==`)
	fmt.Fprintln(w, `an SLI is a measurement (the article's: "p99 latency over 1 minute = 120ms"; -mode users measures one); the SLO is its target`)
	fmt.Fprintf(w, "budget: %s of full outage, or %s of %s requests slower than 150 ms\n",
		human(b.AllowedDowntime()), thousands(b.AllowedBad(requests)), thousands(requests))
	fmt.Fprintf(w, "spent 2,500 bad requests → %.0f%% of the budget left; an error rate of 1.44%% burns it %.1f× too fast (gone in %.1f days)\n",
		100*b.Remaining(2_500, requests), b.BurnRate(0.0144), availability.Month.Hours()/24/b.BurnRate(0.0144))
	const faqSLI = 0.9995 // the FAQ's "request success rate = 99.95%" against its SLO "≥ 99.9% over 30 days"
	fmt.Fprintf(w, "the FAQ's SLI \"success rate = 99.95%%\" burns the 99.9%% budget at %.1f×: %.0f%% of it spent by the end of the window\n",
		b.BurnRate(1-faqSLI), 100*b.BurnRate(1-faqSLI))
	tw := table(w)
	fmt.Fprintln(tw, "SLA (SLO − margin)\tSLA budget/month\tvs the SLO's budget")
	for _, margin := range []float64{0.001, 0.004, 0.005} { // 0.4 pt: the FAQ's SLO 99.9% over an SLA of 99.5%
		sla, err := availability.NewBudget(slo-margin, availability.Month)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%.1f%% (−%.1f pt)\t%s\t%.0f× larger\n", 100*sla.SLO, 100*margin,
			human(sla.AllowedDowntime()), float64(sla.AllowedDowntime())/float64(b.AllowedDowntime()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// region is one region of the reference architecture: a load balancer, three
// app replicas of which two carry peak load, a database primary with a replica.
func region(name string) *availability.Node {
	return availability.InSeries(name,
		availability.Component("lb", 0.9999),
		availability.AtLeastOf("app", 2, availability.Replicas("app", 3, 0.999)...),
		availability.InParallel("db", availability.Component("primary", 0.9995), availability.Component("replica", 0.9995)),
	)
}

func treeDemo(w io.Writer) error {
	sys := availability.InSeries("system",
		availability.Component("dns", 0.9999),
		availability.InParallel("regions", region("region-a"), region("region-b")),
	)
	if err := sys.Validate(); err != nil {
		return err
	}
	a := sys.Availability()
	fmt.Fprintln(w, "== Beyond the article: global DNS → 2 regions × (LB → 2-of-3 app replicas → DB primary+replica) ==")
	fmt.Fprintf(w, "system: %.6f%% (%.2f nines), %s of downtime a year\n", 100*a, availability.Nines(a), human(availability.Downtime(a, availability.Year)))
	tw := table(w)
	fmt.Fprintln(tw, "node\trule\tavailability\tdowntime/yr\tsystem saves/yr if perfect\tshare of downtime\tBirnbaum")
	for _, imp := range sys.Impacts() {
		fmt.Fprintf(tw, "%s%s\t%s\t%.6f%%\t%s\t%s\t%s\t%.4g\n", imp.Prefix, imp.Node.Name, imp.Node.Describe(),
			100*imp.Availability, human(availability.Downtime(imp.Availability, availability.Year)),
			human(time.Duration(imp.IfPerfect*float64(availability.Year))), percent(imp.Share), imp.Birnbaum)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	dom, inRegion := sys.Dominant(), region("region").Dominant()
	fmt.Fprintf(w, "dominant: %s causes %.2f%% of all downtime — the only part without redundancy.\n", dom.Path, 100*dom.Share)
	fmt.Fprintf(w, "inside one region the dominant part is its %s (%.1f%% of that region's downtime).\n\n", inRegion.Node.Name, 100*inRegion.Share)
	return nil
}
