package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part03-caching/lfu"
)

// lfuDemo runs on a redis-server child process of its own: maxmemory and the
// eviction policy are server-wide, and the stack's Redis is shared.
func lfuDemo(ctx context.Context, w io.Writer, c *config) error {
	srv, err := lfu.StartServer(ctx)
	if errors.Is(err, lfu.ErrNoServer) {
		fmt.Fprintln(w, "skipped: the LFU demo needs the redis-server binary (apt-get install redis-server, or scripts/stack install);")
		fmt.Fprintln(w, "it never reconfigures a shared Redis, since maxmemory and the eviction policy are server-wide.")
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }()
	fmt.Fprintf(w, "using a redis-server child process on %s (persistence off)\n", srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer func() { _ = rdb.Close() }()
	r, err := lfu.Run(ctx, rdb, c.lf)
	if err != nil {
		return err
	}
	printLFU(w, r)
	return nil
}

func printLFU(w io.Writer, r lfu.Report) {
	c := r.Config
	fmt.Fprintf(w, "a key just written: OBJECT FREQ %d (LFU_INIT_VAL, not 0); after one GET: %d\n", r.NewKeyFreq, r.AfterOneGET)
	fmt.Fprintf(w, "%d keys of %d B, %d GETs drawn Zipf(s=%g); lfu-log-factor %d, lfu-decay-time %d, maxmemory-samples %d\n",
		c.Keys, c.ValueSize, c.Accesses, c.ZipfS, c.LogFactor, c.DecayTime, c.Samples)
	t := table(w)
	fmt.Fprintf(t, "rank\tGETs\tOBJECT FREQ\tmodel mean [99.99%% range]\t5+√(2·GETs/%d)\t5+log₂(GETs)\tP(next GET increments)\t\n", c.LogFactor)
	for _, k := range r.Sample {
		fmt.Fprintf(t, "%d\t%d\t%d\t%.1f [%d, %d]\t%.1f\t%.1f\t%.4f\t\n", k.Rank, k.Accesses, k.Freq, k.Predicted.Mean, k.Predicted.Lo, k.Predicted.Hi,
			lfu.LFUInitVal+math.Sqrt(2*float64(k.Accesses)/float64(c.LogFactor)), lfu.LFUInitVal+math.Log2(float64(k.Accesses)), k.PNext)
	}
	_ = t.Flush()
	fmt.Fprintf(w, "then maxmemory = %d B (the memory in use) and %d one-time filler keys written:\n", r.MaxMemory, r.Fillers)
	t = table(w)
	fmt.Fprintln(t, "keys\tcount\tmean GETs\tsurvive allkeys-lfu\tsurvive allkeys-lru\t")
	for _, b := range r.Buckets {
		fmt.Fprintf(t, "%s\t%d\t%.1f\t%d (%.0f%%)\t%d (%.0f%%)\t\n", b.Label, b.Keys, b.MeanAccesses,
			b.SurvivedLFU, percent(int64(b.SurvivedLFU), int64(b.Keys)), b.SurvivedLRU, percent(int64(b.SurvivedLRU), int64(b.Keys)))
	}
	_ = t.Flush()
	fmt.Fprintf(w, "evicted_keys: %d under allkeys-lfu, %d under allkeys-lru\n", r.EvictedLFU, r.EvictedLRU)
	fmt.Fprintf(w, "allkeys-lru against a true LRU: %d keys with known idle times (RESTORE … IDLETIME), %d new keys written past maxmemory:\n", c.LRUKeys, c.LRUKeys/2)
	t = table(w)
	fmt.Fprintln(t, "maxmemory-samples\tevicted\tevicted as a true LRU would\t")
	for _, a := range r.LRU {
		fmt.Fprintf(t, "%d\t%d\t%d (%.1f%%)\t\n", a.Samples, a.Evicted, a.AsTrueLRU, 100*a.Share())
	}
	_ = t.Flush()
}
