package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// contentionDemo times a fixed number of checks spread over g goroutines,
// each on its own clients, against one mutex and 64 shards. It is a quick
// look; `make bench-part11` measures the same with the testing package.
func contentionDemo(_ context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== Lock contention: limiter.Keyed with 1 mutex vs 64 shards, and the article's ShardedLimiter (64 RWMutex shards, a rate.Limiter per key), %s checks over 1,024 clients, GOMAXPROCS %d ==\n",
		thousands(o.ops), runtime.GOMAXPROCS(0))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "hello:198.51.100." + strconv.Itoa(i)
	}
	tw := table(w)
	fmt.Fprintln(tw, "goroutines\t1 mutex ns/check\t64 shards ns/check\tthe article's ns/check\t1 mutex ÷ 64 shards\tthe article's ÷ 64 shards")
	roomy := quota.Policy{Limit: quota.MaxLimit, Window: time.Hour}
	for _, g := range []int{1, 2, 8, 64} {
		var ns [3]float64
		for i, shards := range []int{1, 64, 0} {
			check := func(string) {}
			if shards == 0 {
				a := limiter.NewSharded(64)
				r := rate.Limit(float64(roomy.Limit) / roomy.Window.Seconds())
				check = func(key string) { a.Allow(key, r, roomy.Limit) }
			} else {
				k, err := limiter.New(limiter.Config{Policy: roomy, MaxKeys: 4096, Shards: shards})
				if err != nil {
					return err
				}
				check = func(key string) { _, _ = k.Allow(context.Background(), key) }
			}
			per := o.ops / g
			start := time.Now()
			var wg sync.WaitGroup
			for j := range g {
				wg.Go(func() {
					mine := keys[j*len(keys)/g : (j+1)*len(keys)/g]
					for n := range per {
						check(mine[n%len(mine)])
					}
				})
			}
			wg.Wait()
			ns[i] = float64(time.Since(start).Nanoseconds()) / float64(per*g)
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.2f×\t%.2f×\n", g, ns[0], ns[1], ns[2], ns[0]/ns[1], ns[2]/ns[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "GOMAXPROCS %d: at most %d goroutines run at once, however many wait, so this shows what %d cores contending for one lock\n", runtime.GOMAXPROCS(0), runtime.GOMAXPROCS(0), runtime.GOMAXPROCS(0))
	fmt.Fprintln(w, "cost; the single mutex's collapse as cores are added (and the sharded map's scaling) needs a machine with more of them.")
	fmt.Fprintln(w)
	return nil
}
