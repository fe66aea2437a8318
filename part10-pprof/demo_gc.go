package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sysdesign-masterclass/golang/part10-pprof/gclab"
	"github.com/sysdesign-masterclass/golang/part10-pprof/gctrace"
)

// gcDemo runs one workload in a child process per GOGC/GOMEMLIMIT setting
// with GODEBUG=gctrace=1 (or reads a recorded run with -replay), and prints
// what the gctrace lines say.
func gcDemo(ctx context.Context, w io.Writer, o options) error {
	var (
		runs   []gclab.Run
		source string
	)
	if o.replay != "" {
		f, err := os.Open(o.replay)
		if err != nil {
			return err
		}
		var comment string
		runs, comment, err = gclab.ReadRecord(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", o.replay, err)
		}
		source = fmt.Sprintf("recorded in %s: %s", o.replay, strings.ReplaceAll(strings.TrimSpace(comment), "\n", "; "))
	} else {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		wl := gclab.Workload{AllocMiB: o.gcAlloc, LiveMiB: o.gcLive}
		fmt.Fprintf(w, "running %s in a child per setting:", wl)
		for _, s := range gclab.Settings(o.gcLive) {
			r, err := gclab.Exec(ctx, exe, s, wl)
			if err != nil {
				fmt.Fprintln(w)
				return err
			}
			fmt.Fprintf(w, " %s (%d cycles);", s, len(r.Cycles))
			runs = append(runs, r)
		}
		fmt.Fprintln(w)
		source = "measured on " + machine()
	}
	if len(runs) == 0 {
		return fmt.Errorf("no runs")
	}
	fmt.Fprintf(w, "== GODEBUG=gctrace=1 of one workload (%s) under GOGC and GOMEMLIMIT settings ==\n", runs[0].Workload)
	fmt.Fprintln(w, source)
	tw := table(w)
	fmt.Fprintln(tw, "setting\tcycles\tGC CPU (lines)\tlast line's %\tpeak heap\tlive (last)\tgoal (last)\tSTW total\tSTW max\twall")
	for _, r := range runs {
		s := r.Summary()
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%d%%\t%d MB\t%d MB\t%d MB\t%s\t%s\t%s\n", r.Setting, s.Cycles, 100*s.WindowCPU, s.CPUPercent,
			s.PeakHeap, s.LastLive, s.LastGoal, ms(s.PauseTotal), ms(s.PauseMax), ms(r.Stats.Wall))
	}
	tw.Flush()
	fmt.Fprintln(w, "GC CPU (lines): the lines' CPU times over the run, idle marking left out; last line's %: the runtime's own figure, since the program started.")
	fmt.Fprintln(w, "STW: the two stop-the-world phases of each line, wall clock, the time to stop every goroutine included (long on a busy machine).")

	if err := explainLine(w, runs[0]); err != nil {
		return err
	}
	byName := map[string]gctrace.Summary{}
	for _, r := range runs {
		byName[r.Setting.String()] = r.Summary()
	}
	def, d200 := byName[gclab.Setting{}.String()], byName[gclab.Setting{GOGC: "200"}.String()]
	if def.Cycles > 0 && d200.Cycles > 0 {
		fmt.Fprintf(w, "GOGC 100 → 200 (the article's advice): %d → %d cycles, peak heap %d → %d MB: fewer collections, paid for in memory.\n",
			def.Cycles, d200.Cycles, def.PeakHeap, d200.PeakHeap)
	}
	last := runs[len(runs)-1]
	if s := last.Summary(); last.Setting.GOMEMLIMIT != "" {
		fmt.Fprintf(w, "%s with %d MiB live: the heap stayed over the limit (live %d MB, peak %d MB) and the run finished: GOMEMLIMIT is soft, not the article's \"hard limit\".\n",
			last.Setting, last.Workload.LiveMiB, s.LastLive, s.PeakHeap)
	}
	if o.chart != "" {
		f, err := os.Create(o.chart)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("Heap over time: %s, per GOGC/GOMEMLIMIT setting", runs[0].Workload)
		if err := gclab.WriteChart(f, title, runs); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintln(w, "wrote", o.chart)
	}
	if o.record != "" {
		f, err := os.Create(o.record)
		if err != nil {
			return err
		}
		comment := fmt.Sprintf("%s\ngo run ./part10-pprof -mode gc -gc-alloc %d -gc-live %d -record FILE", source, o.gcAlloc, o.gcLive)
		if err := gclab.WriteRecord(f, comment, runs); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintln(w, "wrote", o.record)
	}
	fmt.Fprintln(w)
	return nil
}

// explainLine reads one automatic cycle's line of r aloud: what each term is,
// and how the next goal follows from this one's live heap.
func explainLine(w io.Writer, r gclab.Run) error {
	var c, next gctrace.Cycle
	found := false
	for i := len(r.Cycles) / 2; i+1 < len(r.Cycles); i++ {
		if !r.Cycles[i].Forced && !r.Cycles[i+1].Forced {
			c, next, found = r.Cycles[i], r.Cycles[i+1], true
			break
		}
	}
	if !found {
		return nil
	}
	gogc := 100
	if r.Setting.GOGC != "" {
		if _, err := fmt.Sscan(r.Setting.GOGC, &gogc); err != nil {
			return nil // GOGC=off: no formula to show
		}
	}
	fmt.Fprintf(w, "\none line of %s, read:\n  %s\n", r.Setting, c.Line())
	fmt.Fprintf(w, "  gc %d at %s since start; %d%% = the GC's share of CPU since the program started (not of the last interval)\n", c.N, ms(c.At), c.CPUPercent)
	fmt.Fprintf(w, "  clock: %s stop-the-world sweep termination + %s concurrent mark and scan + %s stop-the-world mark termination\n",
		ms(c.SweepTermination), ms(c.Mark), ms(c.MarkTermination))
	fmt.Fprintf(w, "  cpu: %s + %s assist / %s background / %s idle + %s; sweeping happens after the cycle and is in neither\n",
		ms(c.CPUSweepTermination), ms(c.CPUAssist), ms(c.CPUBackground), ms(c.CPUIdle), ms(c.CPUMarkTermination))
	fmt.Fprintf(w, "  %d->%d->%d MB: heap when the cycle started, when it ended, marked live\n", c.HeapStart, c.HeapEnd, c.HeapLive)
	fmt.Fprintf(w, "  %d MB goal: this cycle's goal; the next line's goal, %d MB, is this live heap + %d%%: %d + %d = %d MB\n\n",
		c.Goal, next.Goal, gogc, c.HeapLive, c.HeapLive*int64(gogc)/100, c.HeapLive+c.HeapLive*int64(gogc)/100)
	return nil
}
