package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/sysdesign-masterclass/golang/part10-pprof/overhead"
)

// overheadDemo measures the workload's throughput under each profiler, in
// rounds; in each round every profiler is measured right after a run with
// none, and its slowdown is taken against that run, so that a machine whose
// load drifts during the demo moves both sides of each ratio alike.
func overheadDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== Profiler overhead: one workload's requests/s with each profiler on, %d rounds of %v each, paired with a run with none ==\n", o.rounds, o.overheadTime)
	fmt.Fprintf(w, "workload: %d clients → %d workers over unbuffered channels, JSON in and out, a shared log under a mutex, %d idle goroutines\n",
		overhead.Clients, overhead.Workers, overhead.Parked)
	fmt.Fprintf(w, "machine: %s\n", machine())
	none := overhead.Profilers[0]
	if _, err := overhead.Measure(ctx, none, o.overheadTime); err != nil { // warm-up: the first run in a process is slower
		return err
	}
	cpu := map[string][]float64{}  // CPU per request ÷ the paired none's
	wall := map[string][]float64{} // wall time per request ÷ the paired none's
	perReq := map[string][]float64{}
	fmt.Fprint(w, "rounds:")
	for i := range o.rounds {
		fmt.Fprintf(w, " %d", i+1)
		for _, p := range overhead.Profilers[1:] {
			base, err := overhead.Measure(ctx, none, o.overheadTime)
			if err != nil {
				return err
			}
			r, err := overhead.Measure(ctx, p, o.overheadTime)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			perReq[none.Name] = append(perReq[none.Name], float64(base.CPUPerRequest()))
			perReq[p.Name] = append(perReq[p.Name], float64(r.CPUPerRequest()))
			cpu[p.Name] = append(cpu[p.Name], float64(r.CPUPerRequest())/float64(base.CPUPerRequest()))
			wall[p.Name] = append(wall[p.Name], base.PerSecond()/r.PerSecond())
		}
	}
	fmt.Fprintln(w)
	pct := func(x float64) string { return fmt.Sprintf("%+.1f%%", 100*(x-1)) }
	tw := table(w)
	fmt.Fprintln(tw, "profiler\tCPU µs/request\tCPU vs none\trange over rounds\twall time vs none\tthe article")
	fmt.Fprintf(tw, "%s\t%.1f\t-\t-\t-\t\n", none.Name, median(perReq[none.Name])/1e3)
	for _, p := range overhead.Profilers[1:] {
		c := cpu[p.Name]
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s .. %s\t%s\t%s\n", p.Name, median(perReq[p.Name])/1e3,
			pct(median(c)), pct(slices.Min(c)), pct(slices.Max(c)), pct(median(wall[p.Name])), p.Article)
	}
	tw.Flush()
	fmt.Fprintln(w, "CPU vs none: the process's CPU time per request ÷ that of a run with no profiler just before (median of the rounds);")
	fmt.Fprintln(w, "wall time vs none: the same for wall time, which a busy machine stretches. Below zero is noise. The committed")
	fmt.Fprintln(w, "benchmark (make bench-part10, -count 5) has both, as ns/op and cpu-ns/op.")
	fmt.Fprintln(w)
	return nil
}

// median of xs (not empty).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
