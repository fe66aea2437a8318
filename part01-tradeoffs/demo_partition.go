package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/partition"
)

func partitionDemo(_ context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== CAP (Gilbert & Lynch): a write reaches G1, a read reaches G2 ==")
	for _, sc := range []struct {
		title string
		mode  partition.Mode
		n     int
		g1    []int
	}{
		{"CP, 2 replicas (quorum 2), G1={n1} G2={n2}: neither side has a quorum", partition.CP, 2, []int{1}},
		{"AP, 2 replicas, G1={n1} G2={n2}: both sides serve, G2 serves stale data", partition.AP, 2, []int{1}},
		{"CP, 3 replicas (quorum 2), G1={n1,n2} G2={n3}: the majority keeps serving", partition.CP, 3, []int{1, 2}},
	} {
		c, err := partition.New(sc.mode, sc.n)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "-- %s --\n", sc.title)
		s := &script{c: c, tw: table(w), acked: map[string]string{}}
		s.write(1, "x", "v0")
		s.partition(sc.g1...)
		s.write(1, "x", "v1")
		s.read(sc.n, "x")
		s.write(sc.n, "x", "v2")
		s.heal()
		for r := 1; r <= sc.n; r++ {
			s.read(r, "x")
		}
		if err := s.tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "LWW rule: the higher Lamport counter wins, ties go to the higher replica number; a value no later write had seen is lost.")
	fmt.Fprintln(w)
	return levelsDemo(w, o.ops)
}

// levelsDemo measures Cassandra's per-query levels on a Tunable cluster:
// which reads see the latest write, and which requests a partition refuses.
func levelsDemo(w io.Writer, ops int) error {
	const n = 3
	wl := partition.Workload{Ops: ops, Keys: 16, Writes: 0.5, Lag: 0.2, Seed: 1}
	fmt.Fprintf(w, "== CAP in practice: Cassandra's per-query ONE / QUORUM / ALL on N = %d replicas, %s operations per row ==\n", n, thousands(ops))
	fmt.Fprintf(w, "half writes, half reads, random coordinators; an unacknowledged copy lands with probability %.0f%% per operation; no read repair\n", 100*wl.Lag)
	tw := table(w)
	fmt.Fprintln(tw, "W\tR\tR + W > N\thealthy: stale reads\tpartition {n1} | {n2,n3}: writes refused\treads refused\tstale reads")
	levels := []partition.Level{partition.One, partition.Quorum, partition.All}
	for _, wl1 := range levels {
		for _, rl := range levels {
			var tallies [2]partition.Tally
			for i, g1 := range [][]int{nil, {1}} {
				c, err := partition.NewTunable(n, 1)
				if err != nil {
					return err
				}
				run := wl
				run.Partition = g1
				if tallies[i], err = run.Run(c, wl1, rl); err != nil {
					return err
				}
			}
			h, p := tallies[0], tallies[1]
			fmt.Fprintf(tw, "%v\t%v\t%d + %d %s %d\t%s\t%s\t%s\t%s\n", wl1, rl, rl.Of(n), wl1.Of(n), cmpSign(rl.Of(n)+wl1.Of(n), n), n,
				share(h.StaleReads, h.Reads-h.RefusedReads), share(p.RefusedWrites, p.Writes), share(p.RefusedReads, p.Reads),
				share(p.StaleReads, p.Reads-p.RefusedReads))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "R + W > N: every read asks a replica the write waited for, so no read is stale; the price is a level a partition can refuse.")
	fmt.Fprintln(w, "ALL refuses while any replica is cut off; ONE always answers, often stale (AP); QUORUM answers on the majority side only, never stale (CP).")
	fmt.Fprintln(w)
	return nil
}

// share prints part/whole as a percentage, or "-" when whole is 0.
func share(part, whole int) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(part)/float64(whole))
}

func cmpSign(a, b int) string {
	if a > b {
		return ">"
	}
	return "≤"
}

// script runs one scenario step by step and prints what each step returned,
// flagging reads that miss the last acknowledged write.
type script struct {
	c     *partition.Cluster
	tw    *tabwriter.Writer
	acked map[string]string // last successful write per key, as a client saw it
}

func (s *script) write(r int, key, data string) {
	v, err := s.c.Write(r, key, data)
	if err != nil {
		fmt.Fprintf(s.tw, "n%d: write %s=%s\trefused: %v\n", r, key, data, err)
		return
	}
	s.acked[key] = data
	fmt.Fprintf(s.tw, "n%d: write %s=%s\tok, %v\n", r, key, data, v.Version)
}

func (s *script) read(r int, key string) {
	v, err := s.c.Read(r, key)
	switch {
	case err != nil:
		fmt.Fprintf(s.tw, "n%d: read %s\trefused: %v\n", r, key, err)
	case v.Data != s.acked[key]:
		fmt.Fprintf(s.tw, "n%d: read %s\t%s (%v) STALE: the last acknowledged write was %s\n", r, key, v.Data, v.Version, s.acked[key])
	default:
		fmt.Fprintf(s.tw, "n%d: read %s\t%s (%v)\n", r, key, v.Data, v.Version)
	}
}

func (s *script) partition(g1 ...int) {
	_ = s.c.Partition(g1...) // replica numbers come from the scenario table above
	names := make([]string, len(g1))
	for i, r := range g1 {
		names[i] = fmt.Sprintf("n%d", r)
	}
	fmt.Fprintf(s.tw, "partition\tG1={%s} cut off from the rest\n", strings.Join(names, ","))
}

func (s *script) heal() {
	conflicts := s.c.Heal()
	if len(conflicts) == 0 {
		fmt.Fprintf(s.tw, "heal\tno conflicting writes\n")
		return
	}
	for _, cf := range conflicts {
		var lost []string
		for _, v := range cf.Lost {
			lost = append(lost, fmt.Sprintf("%s (%v)", v.Data, v.Version))
		}
		fmt.Fprintf(s.tw, "heal\tconflict on %s: kept %s (%v), lost %s\n", cf.Key, cf.Kept.Data, cf.Kept.Version, strings.Join(lost, ", "))
		s.acked[cf.Key] = cf.Kept.Data // what every replica now agrees on
	}
}
