package experiment

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part03-caching/tiered"
)

// The article's Shopee flash-sale inputs, used to compute its figure from its own numbers.
const (
	ArticleRequests = 500_000
	ArticlePods     = 100
	ArticleFigure   = "99.98%"
)

// ShopeeConfig scales the case down to this machine.
type ShopeeConfig struct {
	Requests int           // requests on the hot key (default 50,000)
	Pods     int           // simulated pods, each with its own L1 (default 10)
	Spike    time.Duration // the requests arrive evenly over this window (default 500 ms)
	L1TTL    time.Duration // local TTL (default 1 s, as in the article)
	Workers  int           // client concurrency (default 256)
}

func (c *ShopeeConfig) defaults() {
	if c.Requests <= 0 {
		c.Requests = 50_000
	}
	if c.Pods <= 0 {
		c.Pods = 10
	}
	if c.Spike <= 0 {
		c.Spike = 500 * time.Millisecond
	}
	if c.L1TTL <= 0 {
		c.L1TTL = time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 256
	}
}

// ShopeeResult compares Redis reads without a local cache, with a per-pod L1 that
// has no singleflight (the article's sync.Map tier), and with tiered.Cache.
type ShopeeResult struct {
	Config                 ShopeeConfig
	Baseline, NoSF, Tiered ShopeeRow
	BackendCalls           int64   // loads past Redis (the key is in Redis: should be 0)
	Reduction              float64 // 1 − Tiered.GETs/Baseline.GETs
	ArticleReduction       float64 // 1 − pods/requests with the article's inputs (one L1 fill per pod)
	ExpectedReduction      float64 // the same formula with this run's inputs
}

// ShopeeRow is one way of serving the spike.
type ShopeeRow struct {
	GETs   int64 // GETs that reached Redis
	Took   time.Duration
	Errors int64 // failed reads
}

// RunShopee sends cfg.Requests reads of one hot key, spread over cfg.Spike: straight
// to Redis, then through cfg.Pods local caches without singleflight (every request
// that misses while its pod refills reads Redis too), then through cfg.Pods tiered
// caches (one L1 each, shared Redis, one fill per pod per key).
func (e *Env) RunShopee(ctx context.Context, cfg ShopeeConfig) (ShopeeResult, error) {
	cfg.defaults()
	res := ShopeeResult{Config: cfg}
	key := "product:flash-sale"
	prefix := e.Prefix + "shopee:"
	b, _ := json.Marshal("flash sale item")
	if err := e.Redis.Set(ctx, prefix+key, b, time.Hour).Err(); err != nil {
		return res, err
	}
	measure := func(get func(i int) error) (ShopeeRow, error) {
		var errs atomic.Int64
		g0, start := e.Counter.Gets(), time.Now()
		spread(ctx, cfg, func(i int) {
			if get(i) != nil {
				errs.Add(1)
			}
		})
		return ShopeeRow{GETs: e.Counter.Gets() - g0, Took: time.Since(start), Errors: errs.Load()}, context.Cause(ctx)
	}
	var err error
	if res.Baseline, err = measure(func(int) error { return e.Redis.Get(ctx, prefix+key).Err() }); err != nil {
		return res, err
	}

	locals := make([]*tiered.Local[string], cfg.Pods)
	for i := range locals {
		if locals[i], err = tiered.NewLocal[string](tiered.LocalOptions{TTL: cfg.L1TTL}); err != nil {
			return res, err
		}
		defer locals[i].Close()
	}
	if res.NoSF, err = measure(func(i int) error {
		l1 := locals[i%cfg.Pods]
		if _, ok := l1.Get(key); ok {
			return nil
		}
		v, err := e.Redis.Get(ctx, prefix+key).Result()
		if err == nil {
			l1.Set(key, v)
		}
		return err
	}); err != nil {
		return res, err
	}

	var loads atomic.Int64
	pods := make([]*tiered.Cache[string], cfg.Pods)
	for i := range pods {
		c, err := tiered.New(ctx, tiered.Options[string]{
			Redis: e.Redis, Prefix: prefix,
			Load: func(context.Context, string) (string, error) { loads.Add(1); return "flash sale item", nil },
			L1:   tiered.LocalOptions{TTL: cfg.L1TTL},
		})
		if err != nil {
			return res, err
		}
		defer func() { _ = c.Close() }()
		pods[i] = c
	}
	if res.Tiered, err = measure(func(i int) error { _, err := pods[i%cfg.Pods].Get(ctx, key); return err }); err != nil {
		return res, err
	}
	res.BackendCalls = loads.Load()
	res.Reduction = 1 - float64(res.Tiered.GETs)/float64(res.Baseline.GETs)
	res.ArticleReduction = 1 - float64(ArticlePods)/float64(ArticleRequests)
	res.ExpectedReduction = 1 - float64(cfg.Pods)/float64(cfg.Requests)
	return res, nil
}

// spread runs do(i) for i in [0, Requests), request i starting no earlier than
// i·Spike/Requests after the start, on Workers goroutines, until ctx ends.
func spread(ctx context.Context, cfg ShopeeConfig, do func(i int)) {
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Requests || ctx.Err() != nil {
					return
				}
				if sleepUntil(ctx, start.Add(time.Duration(i)*cfg.Spike/time.Duration(cfg.Requests))) != nil {
					return
				}
				do(i)
			}
		})
	}
	wg.Wait()
}
