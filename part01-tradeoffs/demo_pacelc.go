package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/partition"
)

// pacelcDemo prints the article's PACELC table with each row's label measured
// from its mechanism (its default levels on a simulated 3-replica cluster),
// after measuring the "else" branch: what each pair of levels costs in
// latency and buys in consistency when nothing is partitioned.
func pacelcDemo(_ context.Context, w io.Writer, o options) error {
	wl := partition.Workload{Ops: o.ops, Keys: 16, Writes: 0.5, Lag: 0.2, Seed: 1,
		Delay: partition.Delay{Median: time.Millisecond, Sigma: 0.5}}
	fmt.Fprintln(w, "== PACELC: if Partition, Availability or Consistency; Else, Latency or Consistency ==")
	fmt.Fprintf(w, "Else, measured: N = 3, no partition, %s operations per row; each replica answers after a lognormal delay\n", thousands(o.ops))
	fmt.Fprintf(w, "(median %s, σ %.1f: p99 %s); a request waits for its level's first W (R) answers\n",
		ms(wl.Delay.Median), wl.Delay.Sigma, ms(time.Duration(float64(wl.Delay.Median)*math.Exp(2.326*wl.Delay.Sigma))))
	tw := table(w)
	fmt.Fprintln(tw, "W\tR\tR + W > N\tstale reads\tread p50\tread p99\twrite p50\twrite p99")
	levels := []partition.Level{partition.One, partition.Quorum, partition.All}
	for _, wl1 := range levels {
		for _, rl := range levels {
			b, err := partition.Measure(wl1, rl, wl)
			if err != nil {
				return err
			}
			h := b.Healthy
			fmt.Fprintf(tw, "%v\t%v\t%d + %d %s 3\t%s\t%s\t%s\t%s\t%s\n", wl1, rl, rl.Of(3), wl1.Of(3), cmpSign(rl.Of(3)+wl1.Of(3), 3),
				share(h.StaleReads, h.Reads-h.RefusedReads), ms(b.ReadLatency(0.5)), ms(b.ReadLatency(0.99)),
				ms(b.WriteLatency(0.5)), ms(b.WriteLatency(0.99)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "EL: wait for fewer replicas, answer sooner, sometimes stale; EC: R + W > N, never stale, every request waits for more answers.")
	fmt.Fprintln(w)

	fmt.Fprintln(w, "the article's table; each label measured from the row's default levels (W/R on 3 replicas), not read from the table:")
	fmt.Fprintln(w, "PA if a read cut off with n1 is answered, PC if refused; EL if a healthy read was stale, EC if none was")
	tw = table(w)
	fmt.Fprintln(tw, "system\tPACELC\tW/R\tmeasured\treads refused, n1 cut off\tstale reads\tread p99\thow")
	for _, c := range partition.Article() {
		b, err := partition.Measure(c.Write, c.Read, wl)
		if err != nil {
			return err
		}
		p := b.Partitioned
		fmt.Fprintf(tw, "%s\t%s\t%v/%v\t%s\t%s\t%s\t%s\t%s\n", c.System, c.Label(), c.Write, c.Read, b.Label(),
			share(p.RefusedReads, p.Reads), share(b.Healthy.StaleReads, b.Healthy.Reads), ms(b.ReadLatency(0.99)), c.Mechanism)
		if c.Caveat != "" {
			fmt.Fprintf(tw, "\t\t\t\t\t\t\tnote: %s\n", c.Caveat)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	alt, err := partition.Measure(partition.Quorum, partition.Quorum, wl)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "the same measurement with Cassandra at QUORUM/QUORUM gives %s: the label is a configuration.\n", alt.Label())
	fmt.Fprintln(w, "MongoDB's w:1 is acknowledged and read by its primary, which this leaderless model does not have.")
	fmt.Fprintln(w, "Spanner's own EC price, commit wait, is not in the model; quorum round trips are.")
	fmt.Fprintln(w)
	return nil
}
