package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sysdesign-masterclass/golang/part03-caching/experiment"
)

// shopeeDemo recomputes the article's "Redis load reduced 99.98%" at this machine's
// scale, beside the same formula applied to the article's own inputs.
func shopeeDemo(ctx context.Context, w io.Writer, c *config) error {
	r, err := c.env.RunShopee(ctx, c.sh)
	if err != nil {
		return err
	}
	cfg := r.Config
	fmt.Fprintf(w, "%d requests on one hot key within %v, %d pods, local TTL %v (article: %d requests, ~%d pods, 1 s)\n",
		cfg.Requests, cfg.Spike, cfg.Pods, cfg.L1TTL, experiment.ArticleRequests, experiment.ArticlePods)
	t := table(w)
	fmt.Fprintln(t, "\trequests\tRedis GETs\tRedis load\ttook\terrors\t")
	for _, row := range []struct {
		name string
		r    experiment.ShopeeRow
	}{{"no local cache", r.Baseline}, {"L1 per pod, no singleflight", r.NoSF}, {"L1 per pod (tiered.Cache)", r.Tiered}} {
		fmt.Fprintf(t, "%s\t%d\t%d\t%.3f%%\t%s\t%d\t\n", row.name, cfg.Requests, row.r.GETs, percent(row.r.GETs, r.Baseline.GETs), ms(row.r.Took), row.r.Errors)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "Redis load reduced %.3f%% here (model 1 - pods/requests = %.3f%%); article: %q = 1 - %d/%d = %.3f%%\n",
		100*r.Reduction, 100*r.ExpectedReduction, experiment.ArticleFigure, experiment.ArticlePods, experiment.ArticleRequests, 100*r.ArticleReduction)
	if r.BackendCalls > 0 {
		fmt.Fprintf(w, "(loads past Redis: %d)\n", r.BackendCalls)
	}
	return nil
}
