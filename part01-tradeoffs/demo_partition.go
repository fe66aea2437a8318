package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/partition"
)

func pacelcDemo(w io.Writer) error {
	fmt.Fprintln(w, "== PACELC: if Partition, Availability or Consistency; Else, Latency or Consistency ==")
	tw := table(w)
	fmt.Fprintln(tw, "system\tPACELC\thow")
	for _, c := range partition.Article() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.System, c.Label(), c.Mechanism)
		if c.Caveat != "" {
			fmt.Fprintf(tw, "\t\tnote: %s\n", c.Caveat)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

func partitionDemo(w io.Writer) error {
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
	fmt.Fprintln(w, "LWW rule: the higher Lamport counter wins, ties go to the higher replica number; the loser is dropped.")
	fmt.Fprintln(w)
	return nil
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
