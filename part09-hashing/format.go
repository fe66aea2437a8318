package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// section prints a demo section's heading.
func section(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "\n== "+format+"\n", a...)
}

// pct formats a fraction as a percentage with one decimal.
func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// table prints rows under header, right-aligned in columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range append([][]string{header}, rows...) {
		fmt.Fprint(tw, strings.Join(r, "\t")+"\t\n")
	}
	return tw.Flush()
}
