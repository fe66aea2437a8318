package main

import (
	"context"
	"fmt"
	"io"
)

// patternsDemo writes n products through each write pattern, reads them back, crashes
// write-behind, and shows read-through coalescing and negative caching.
func patternsDemo(ctx context.Context, w io.Writer, c *config) error {
	r, err := c.env.RunPatterns(ctx, c.writes)
	if err != nil {
		return err
	}
	t := table(w)
	fmt.Fprintln(t, "pattern\twrites\twrite p50\tDB write round trips\treads after write that hit the DB\tlost on crash\tlost on clean shutdown\t")
	for _, row := range r.Writes {
		crash, clean := "0", "0"
		if row.Pattern == "write-behind" {
			crash = fmt.Sprintf("%d (window %d)", row.CrashLost, row.LossWindow)
			clean = fmt.Sprint(row.CloseLost)
		}
		fmt.Fprintf(t, "%s\t%d\t%s\t%d\t%d/%d\t%s\t%s\t\n", row.Pattern, row.Writes, ms(row.WriteP50), row.DBWrites, row.ReadsToDB, row.Writes, crash, clean)
	}
	_ = t.Flush()
	fmt.Fprintf(w, "read-through: %d concurrent readers of one uncached key -> %d database read(s)\n", r.ColdReaders, r.ColdDBReads)
	fmt.Fprintf(w, "negative caching: %d lookups of an absent ID -> %d database read(s) (without it: %d)\n", r.NegLookups, r.NegDBReads, r.NegDBReadsOff)
	return nil
}
