package experiment

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sysdesign-masterclass/golang/part03-caching/lfu"
)

func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// PrintStampede writes the stampede table.
func PrintStampede(w io.Writer, cfg StampedeConfig, rows []StampedeRow) {
	cfg.defaults()
	fmt.Fprintf(w, "%d requests spread over the %v TTL, then %d at once at expiry; backend takes %v (δ), β=%g\n",
		cfg.Trickle, cfg.TTL, cfg.Burst, cfg.BackendLatency, cfg.Beta)
	t := table(w)
	fmt.Fprintln(t, "strategy\trequests\tbackend calls\tRedis commands\tburst p50\tburst p99\terrors\t")
	for _, r := range rows {
		fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t\n", r.Name, r.Requests, r.BackendCalls, r.RedisCommands, ms(r.BurstP50), ms(r.BurstP99), r.Errors)
	}
	_ = t.Flush()
}

// PrintShopee writes the flash-sale comparison beside the article's figure.
func PrintShopee(w io.Writer, r ShopeeResult) {
	c := r.Config
	fmt.Fprintf(w, "%d requests on one hot key within %v, %d pods, local TTL %v (article: %d requests, ~%d pods, 1 s)\n",
		c.Requests, c.Spike, c.Pods, c.L1TTL, ArticleRequests, ArticlePods)
	t := table(w)
	fmt.Fprintln(t, "\trequests\tRedis GETs\tRedis load\ttook\t")
	fmt.Fprintf(t, "no local cache\t%d\t%d\t100%%\t%s\t\n", c.Requests, r.BaselineGETs, ms(r.BaselineTook))
	fmt.Fprintf(t, "L1 per pod (tiered)\t%d\t%d\t%.3f%%\t%s\t\n", c.Requests, r.TieredGETs, 100*float64(r.TieredGETs)/float64(r.BaselineGETs), ms(r.TieredTook))
	_ = t.Flush()
	fmt.Fprintf(w, "Redis load reduced %.3f%% here (model 1 - pods/requests = %.3f%%); article: %q = 1 - %d/%d = %.3f%%\n",
		100*r.Reduction, 100*r.ExpectedReduction, ArticleFigure, ArticlePods, ArticleRequests, 100*r.ArticleReduction)
	if r.BackendCalls > 0 || r.Errors > 0 {
		fmt.Fprintf(w, "(loads past Redis: %d, errors: %d)\n", r.BackendCalls, r.Errors)
	}
}

// PrintLFU writes the LFU report.
func PrintLFU(w io.Writer, r lfu.Report) {
	c := r.Config
	fmt.Fprintf(w, "%d keys of %d B, %d GETs drawn Zipf(s=%g); lfu-log-factor %d, lfu-decay-time %d, maxmemory-samples %d\n",
		c.Keys, c.ValueSize, c.Accesses, c.ZipfS, c.LogFactor, c.DecayTime, c.Samples)
	t := table(w)
	fmt.Fprintf(t, "rank\tGETs\tOBJECT FREQ\tMorris model mean [99.99%% range]\tP(next GET increments) = 1/((freq-%d)*%d+1)\t\n", lfu.LFUInitVal, c.LogFactor)
	for _, k := range r.Sample {
		fmt.Fprintf(t, "%d\t%d\t%d\t%.1f [%d, %d]\t%.4f\t\n", k.Rank, k.Accesses, k.Freq, k.Predicted.Mean, k.Predicted.Lo, k.Predicted.Hi, k.PNext)
	}
	_ = t.Flush()
	fmt.Fprintf(w, "then maxmemory = %d B (the memory in use) and %d one-time filler keys written:\n", r.MaxMemory, r.Fillers)
	t = table(w)
	fmt.Fprintln(t, "keys\tcount\tmean GETs\tsurvive allkeys-lfu\tsurvive allkeys-lru\t")
	for _, b := range r.Buckets {
		fmt.Fprintf(t, "%s\t%d\t%.1f\t%d (%.0f%%)\t%d (%.0f%%)\t\n", b.Label, b.Keys, b.MeanAccesses,
			b.SurvivedLFU, 100*float64(b.SurvivedLFU)/float64(b.Keys), b.SurvivedLRU, 100*float64(b.SurvivedLRU)/float64(b.Keys))
	}
	_ = t.Flush()
	fmt.Fprintf(w, "evicted_keys: %d under allkeys-lfu, %d under allkeys-lru\n", r.EvictedLFU, r.EvictedLRU)
}
