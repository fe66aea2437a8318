package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/partition"
)

func pacelcDemo(_ context.Context, w io.Writer, _ options) error {
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
