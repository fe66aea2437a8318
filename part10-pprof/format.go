package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// table returns a writer that aligns tab-separated columns; Flush prints them.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// ms prints a duration in milliseconds with the digits a reader needs.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.3f ms", v)
}

// size prints a byte count in B, KiB or MiB.
func size[T ~int | ~int64 | ~uint64](n T) string {
	switch v := float64(n); {
	case v >= 1<<20 || v <= -(1<<20):
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10 || v <= -(1<<10):
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
