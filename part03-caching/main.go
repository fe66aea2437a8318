// Command part03-caching runs the chapter's experiments: the five cache patterns, a
// cache stampede on a hot key under four defences, the Shopee flash-sale figure at
// this machine's scale, and Redis LFU eviction on a real redis-server.
//
//	go run ./part03-caching                 # everything, about 7 s on 2 cores
//	go run ./part03-caching -mode stampede -n 5000
//	go run ./part03-caching -h
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part03-caching/experiment"
	"github.com/sysdesign-masterclass/golang/part03-caching/lfu"
)

func main() {
	mode := flag.String("mode", "all", "all | patterns | stampede | shopee | lfu")
	writes := flag.Int("writes", 200, "patterns: writes (and reads) per pattern")
	var st experiment.StampedeConfig
	flag.IntVar(&st.Burst, "n", 1000, "stampede: concurrent requests released at the moment of expiry")
	flag.IntVar(&st.Trickle, "trickle", 200, "stampede: requests spread over the TTL before expiry")
	flag.DurationVar(&st.TTL, "ttl", 500*time.Millisecond, "stampede: TTL of the hot key")
	flag.DurationVar(&st.BackendLatency, "backend-latency", 50*time.Millisecond, "stampede: duration of one recompute (XFetch's δ)")
	flag.Float64Var(&st.Beta, "beta", 1, "stampede: XFetch β")
	var sh experiment.ShopeeConfig
	flag.IntVar(&sh.Requests, "shopee-requests", 50_000, "shopee: requests on the hot key")
	flag.IntVar(&sh.Pods, "pods", 10, "shopee: simulated pods, each with its own L1")
	flag.DurationVar(&sh.Spike, "spike", 500*time.Millisecond, "shopee: window the requests arrive in")
	flag.DurationVar(&sh.L1TTL, "l1-ttl", time.Second, "shopee: local (L1) TTL")
	var lf lfu.Config
	flag.IntVar(&lf.Keys, "lfu-keys", 2000, "lfu: keys loaded")
	flag.IntVar(&lf.Accesses, "lfu-accesses", 100_000, "lfu: Zipf-distributed GETs")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./part03-caching [-mode all|patterns|stampede|shopee|lfu] [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *mode, *writes, st, sh, lf); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, mode string, writes int, st experiment.StampedeConfig, sh experiment.ShopeeConfig, lf lfu.Config) error {
	on := func(m string) bool { return mode == "all" || mode == m }
	if !on("patterns") && !on("stampede") && !on("shopee") && !on("lfu") {
		return fmt.Errorf("unknown -mode %q (want all, patterns, stampede, shopee or lfu)", mode)
	}
	var env *experiment.Env
	if on("patterns") || on("stampede") || on("shopee") {
		var err error
		if env, err = experiment.Connect(ctx, true); err != nil {
			return err
		}
		defer env.Close()
		env.Describe(os.Stdout)
	}

	if on("patterns") {
		fmt.Println("\n== Five patterns: write, read back, crash ==")
		rep, err := env.RunPatterns(ctx, writes)
		if err != nil {
			return err
		}
		experiment.PrintPatterns(os.Stdout, rep)
	}
	if on("stampede") {
		fmt.Println("\n== Stampede on a hot key at expiry ==")
		rows, err := env.RunStampede(ctx, st, func(name string) { fmt.Fprintf(os.Stderr, "  running %s...\n", name) })
		if err != nil {
			return err
		}
		experiment.PrintStampede(os.Stdout, st, rows)
	}
	if on("shopee") {
		fmt.Println("\n== Shopee flash sale, scaled to this machine ==")
		res, err := env.RunShopee(ctx, sh)
		if err != nil {
			return err
		}
		experiment.PrintShopee(os.Stdout, res)
	}
	if on("lfu") {
		fmt.Println("\n== Redis LFU: Morris counter and eviction ==")
		return runLFU(ctx, lf)
	}
	return nil
}

// runLFU uses a redis-server child process of its own: maxmemory and the eviction
// policy are server-wide, and the stack's Redis is shared.
func runLFU(ctx context.Context, cfg lfu.Config) error {
	srv, err := lfu.StartServer(ctx)
	if errors.Is(err, lfu.ErrNoServer) {
		fmt.Println("skipped: the LFU demo needs the redis-server binary (apt-get install redis-server, or scripts/stack install);")
		fmt.Println("it never reconfigures a shared Redis, since maxmemory and the eviction policy are server-wide.")
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }()
	fmt.Printf("using a redis-server child process on %s (persistence off)\n", srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer func() { _ = rdb.Close() }()
	rep, err := lfu.Run(ctx, rdb, cfg)
	if err != nil {
		return err
	}
	experiment.PrintLFU(os.Stdout, rep)
	return nil
}
