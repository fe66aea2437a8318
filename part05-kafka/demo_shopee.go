package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// The case study's figures.
const (
	shopeeOrdersPerMin = 500_000
	shopeeDBWritesPerS = 5_000
	shopeeWorkers      = 50
	shopeePartitions   = 10
	shopeeBuffer       = 10_000
)

// peak is the fluid model of a burst: orders arrive at in/s for a while,
// the database takes out/s, the difference queues (in the pool's buffer
// first, then in Kafka).
type peak struct{ in, out float64 }

func (p peak) growth() float64                      { return p.in - p.out }
func (p peak) backlogAfter(d time.Duration) float64 { return max(0, p.growth()*d.Seconds()) }
func (p peak) drain(backlog float64) time.Duration {
	return time.Duration(backlog / p.out * float64(time.Second))
}

// shopeeDemo computes what the case study's numbers imply.
func shopeeDemo(_ context.Context, w io.Writer, _ options) error {
	p := peak{in: shopeeOrdersPerMin / 60.0, out: shopeeDBWritesPerS}
	fmt.Fprintf(w, "== Shopee flash sale: %s orders/min in, the database takes %s writes/s ==\n",
		thousands(shopeeOrdersPerMin), thousands(shopeeDBWritesPerS))
	fmt.Fprintf(w, "in: %s/60 = %.0f orders/s; the backlog grows by %.0f - %d = %.0f orders/s while the burst lasts\n",
		thousands(shopeeOrdersPerMin), p.in, p.in, shopeeDBWritesPerS, p.growth())
	fill := time.Duration(shopeeBuffer / p.growth() * float64(time.Second))
	fmt.Fprintf(w, "the pool's buffer of %s messages is full after %s / %.0f = %.1f s; from then on the consumer blocks and the backlog waits in Kafka\n",
		thousands(shopeeBuffer), thousands(shopeeBuffer), p.growth(), fill.Seconds())
	tw := table(w)
	fmt.Fprintln(tw, "burst lasts\torders in\twritten meanwhile\tbacklog at its end\tin Kafka (backlog - buffer)\tdrain after it (backlog / 5,000/s)\tlast order written")
	for _, d := range []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute} {
		in := p.in * d.Seconds()
		b := p.backlogAfter(d)
		drain := p.drain(b)
		fmt.Fprintf(tw, "%v\t%s\t%s\t%s\t%s\t%.1f s\t%.1f s after the burst began\n", d, thousands(int64(in)), thousands(int64(p.out*d.Seconds())),
			thousands(int64(b)), thousands(int64(max(0, b-shopeeBuffer))), drain.Seconds(), (d + drain).Seconds())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	conc := shopeeWorkers * shopeePartitions
	perWrite := time.Duration(float64(conc) / shopeeDBWritesPerS * float64(time.Second))
	fmt.Fprintf(w, "Little's law: %d workers × %d partitions = %d writes in flight at %s writes/s means each write takes %d / %d = %v;\n",
		shopeeWorkers, shopeePartitions, conc, thousands(shopeeDBWritesPerS), conc, shopeeDBWritesPerS, perWrite)
	fmt.Fprintf(w, "at 10 ms a write the same %d workers would send %s writes/s: the pool sets concurrency, not the rate (a limiter would).\n",
		conc, thousands(int64(float64(conc)/0.010)))
	fmt.Fprintf(w, "the buffer holds %s / %s = %.0f s of writes; a 1-minute burst's backlog clears in %.0f s, far inside 7 days of retention.\n\n",
		thousands(shopeeBuffer), thousands(shopeeDBWritesPerS), float64(shopeeBuffer)/shopeeDBWritesPerS, p.drain(p.backlogAfter(time.Minute)).Seconds())
	return nil
}
