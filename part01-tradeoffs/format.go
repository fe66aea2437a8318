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

// percent prints a share with two decimals, or three significant digits
// when it is too small for that (0.000206%).
func percent(x float64) string {
	if p := 100 * x; p >= 1 || p == 0 {
		return fmt.Sprintf("%.2f%%", p)
	}
	return fmt.Sprintf("%.3g%%", 100*x)
}

// thousands formats n with comma separators: 10000000 → 10,000,000.
func thousands[T ~int | ~uint64](n T) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// human prints a duration at the scale a reader thinks in.
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= time.Hour:
		return fmt.Sprintf("%.2f h", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	case d >= time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

// ms prints a latency in milliseconds with enough digits for a loopback
// request (0.213 ms) and for a slow one (153 ms).
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
