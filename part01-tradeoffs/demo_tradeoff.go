package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/availability"
)

// The article's 3D table names a performance goal (a 500k RPS flash-sale
// peak), a reliability goal (99.999% uptime) and a cost goal (the fewest
// nodes). nodeRPS and nodeUp are this demo's assumptions, printed with the
// result: what one node serves and how often it is up.
const (
	peakRPS = 500_000
	nodeRPS = 50_000
	nodeUp  = 0.999
)

func tradeoffDemo(_ context.Context, w io.Writer, _ options) error {
	k := int(math.Ceil(float64(peakRPS) / nodeRPS))
	fmt.Fprintln(w, "== The 3D trade-off table, computed: the article's three examples as one decision ==")
	fmt.Fprintf(w, "performance \"Flash sale: 500k RPS peak\" × reliability \"Banking: 99.999%% uptime\" × cost \"Startup: minimize node count\"\n")
	fmt.Fprintf(w, "assumed: one node serves %s RPS and is up %.1f%% of the time; nodes fail independently\n", thousands(nodeRPS), 100*nodeUp)
	bare := availability.AtLeast(k, repeat(nodeUp, k)...)
	fmt.Fprintf(w, "performance alone needs %d nodes; with exactly %d the peak is served %s of the time (short of capacity %s a year)\n",
		k, k, percent(bare), human(availability.Downtime(bare, availability.Year)))
	tw := table(w)
	fmt.Fprintln(tw, "uptime target\tfewest nodes\tspares\tpeak served\tshort of capacity/yr\tfailed requests/s allowed at peak")
	targets := []float64{0.999, 0.9999, 0.99999}
	nodes := make([]int, len(targets))
	for i, target := range targets {
		n, a := availability.MinReplicas(k, nodeUp, target)
		if n == 0 {
			return fmt.Errorf("%v is out of reach with nodes up %v", target, nodeUp)
		}
		nodes[i] = n
		fmt.Fprintf(tw, "%.3f%%\t%d\t%d\t%.6f%%\t%s\t%.0f\n", 100*target, n, n-k, 100*a,
			human(availability.Downtime(a, availability.Year)), peakRPS*(1-target))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first, last := nodes[0], nodes[len(nodes)-1]
	fmt.Fprintf(w, "five nines cost %d nodes against three nines' %d (+%.0f%% cost) while failures are independent; correlated ones\n",
		last, first, 100*float64(last-first)/float64(first))
	fmt.Fprintln(w, "(a zone, a bad deploy) do not shrink with node count: the reliability money goes to zones and rollouts (-mode availability)")
	fmt.Fprintln(w)
	return nil
}

func repeat(a float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = a
	}
	return out
}
