package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// table returns a writer that aligns tab-separated columns; Flush prints them.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// thousands formats n with comma separators: 30000 → 30,000.
func thousands[T ~int | ~int64](n T) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// pct prints part of total as a percentage with one decimal.
func pct[T ~int | ~int64](part, total T) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(total))
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
	return fmt.Sprintf("%.2f ms", v)
}

// spread prints per-shard counts and the largest over the mean: "10,012 / 9,987 / 10,001 (max/mean 1.00)".
func spread(counts []int64) string {
	var total, top int64
	s := ""
	for i, c := range counts {
		if i > 0 {
			s += " / "
		}
		s += thousands(c)
		total += c
		top = max(top, c)
	}
	if total == 0 {
		return s
	}
	return fmt.Sprintf("%s (max/mean %.2f)", s, float64(top)*float64(len(counts))/float64(total))
}

// sequentialUsers returns users with ids from..from+n-1 and scores spread
// over [0, 1000) by a fixed multiplicative hash (many ties, no randomness).
func sequentialUsers(from int64, n int) []shard.User {
	out := make([]shard.User, n)
	for i := range out {
		id := from + int64(i)
		out[i] = shard.User{ID: id, Name: fmt.Sprintf("user-%d", id), Score: int64(uint64(id)*2654435761%1000) + 0}
	}
	return out
}
