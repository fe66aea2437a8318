package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sysdesign-masterclass/golang/part03-caching/experiment"
)

// patternsDemo writes n products through each write pattern, reads them back from
// another instance, crashes and closes each, and shows read-through coalescing and
// negative caching.
func patternsDemo(ctx context.Context, w io.Writer, c *config) error {
	r, err := c.env.RunPatterns(ctx, c.writes)
	if err != nil {
		return err
	}
	printPatterns(w, r)
	return nil
}

// printPatterns writes the pattern tour: measured figures beside the article's
// labels for write latency, consistency and data-loss risk.
func printPatterns(w io.Writer, r experiment.PatternsReport) {
	t := table(w)
	fmt.Fprintln(t, "pattern\tarticle: write latency\twrite p50\tDB write round trips\tRedis commands\treads after write that hit the DB\t")
	for _, row := range r.Writes {
		fmt.Fprintf(t, "%s\t%s\t%s\t%d\t%d\t%d/%d\t\n", row.Pattern, row.Article.WriteLatency, ms(row.WriteP50),
			row.DBWrites, row.RedisCommands, row.ReadsToDB, row.Writes)
	}
	_ = t.Flush()
	fmt.Fprintln(w)
	t = table(w)
	fmt.Fprintln(t, "pattern\tarticle: consistency\tstale reads after an update (other instance)\tarticle: loss risk\tlost on crash\tlost on clean shutdown\t")
	for _, row := range r.Writes {
		crash := fmt.Sprint(row.CrashLost)
		if row.LossWindow > 0 {
			crash = fmt.Sprintf("%d (window %d)", row.CrashLost, row.LossWindow)
		}
		fmt.Fprintf(t, "%s\t%s\t%d/%d\t%s\t%s\t%d\t\n", row.Pattern, row.Article.Consistency, row.StaleReads, row.Writes,
			row.Article.LossRisk, crash, row.CloseLost)
	}
	_ = t.Flush()
	fmt.Fprintf(w, "read-through: %d concurrent readers of one uncached key -> %d database read(s)\n", r.ColdReaders, r.ColdDBReads)
	fmt.Fprintf(w, "negative caching: %d lookups of an absent ID -> %d database read(s) (without it: %d)\n", r.NegLookups, r.NegDBReads, r.NegDBReadsOff)
}
