// Package part11bench compares the chapter's limiters with the anchor
// libraries on the same inputs in the same process: in-process checks
// against go.uber.org/ratelimit and sethvargo/go-limiter, the keyed limiter's
// 64 shards against one mutex under RunParallel, and the Redis limiters
// against go-redis/redis_rate v10 on the same Redis.
package part11bench

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-limiter/memorystore"
	"go.uber.org/ratelimit"
	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

// clients are 1,024 keys, as many distinct clients as a busy node sees at once.
var clients = func() []string {
	k := make([]string, 1024)
	for i := range k {
		k[i] = "hello:198.51.100." + strconv.Itoa(i)
	}
	return k
}()

// A quota no benchmark exhausts: every check is admitted, so all contenders
// do the same work.
var roomy = quota.Policy{Limit: quota.MaxLimit, Window: time.Hour}

// BenchmarkKeyedAllow: one check of a known key, one goroutine, the same
// 1,024 keys in the same order for every contender, no eviction on either
// side (4,096 keys of room: our MaxKeys, go-limiter's InitialAlloc).
// impl=ours is limiter.Keyed (a token bucket per key as one int64 in 64
// shards, each a mutex and an open-addressed index from the key's hash;
// MaxKeys and lossless eviction), called through quota.Limiter as the
// middleware calls it; impl=sethvargo is go-limiter's memorystore behind
// its limiter.Store interface, the same job with less promised: no key cap
// (the map grows until a sweeper goroutine, every 6 hours by default,
// drops buckets idle 12 hours, whether or not they have refilled) and the
// wall clock; impl=article is the article's ShardedLimiter (limiter.Sharded:
// a rate.Limiter per key in 64 RWMutex shards, never evicting). cpu-ns/op
// is the process's CPU time per check, which a busy machine's waits for a
// core do not inflate.
func BenchmarkKeyedAllow(b *testing.B) {
	b.Run("impl=ours", func(b *testing.B) {
		k, err := limiter.New(limiter.Config{Policy: roomy, MaxKeys: 4096})
		if err != nil {
			b.Fatal(err)
		}
		var l quota.Limiter = k
		b.ReportAllocs()
		cpu := cpuClock(b)
		for i := 0; b.Loop(); i++ {
			if d, _ := l.Allow(b.Context(), clients[i&1023]); !d.Allowed {
				b.Fatal("refused")
			}
		}
		cpu.report(b)
	})
	b.Run("impl=sethvargo", func(b *testing.B) {
		s, err := memorystore.New(&memorystore.Config{Tokens: uint64(roomy.Limit), Interval: roomy.Window})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close(context.Background())
		b.ReportAllocs()
		cpu := cpuClock(b)
		for i := 0; b.Loop(); i++ {
			if _, _, _, ok, _ := s.Take(b.Context(), clients[i&1023]); !ok {
				b.Fatal("refused")
			}
		}
		cpu.report(b)
	})
	b.Run("impl=article", func(b *testing.B) {
		s := limiter.NewSharded(64)
		r := rate.Limit(float64(roomy.Limit) / roomy.Window.Seconds())
		b.ReportAllocs()
		cpu := cpuClock(b)
		for i := 0; b.Loop(); i++ {
			if !s.Allow(clients[i&1023], r, roomy.Limit) {
				b.Fatal("refused")
			}
		}
		cpu.report(b)
	})
}

// BenchmarkLeaky: one admission of a leaky bucket that never has to wait.
// impl=ours is limiter.Leaky.Reserve (a CAS on one int64, no sleeping);
// impl=uber is go.uber.org/ratelimit's Take with WithoutSlack (atomic too,
// but it sleeps when early); impl=uber-slack is its default, a slack of 10
// (TestArticleUberDefaultSlackBursts: what the slack does to the spacing).
func BenchmarkLeaky(b *testing.B) {
	b.Run("impl=ours", func(b *testing.B) {
		l, err := limiter.NewLeaky(quota.Policy{Limit: quota.MaxLimit, Window: time.Millisecond}, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cpu := cpuClock(b)
		for b.Loop() {
			l.Reserve(time.Now())
		}
		cpu.report(b)
	})
	for name, opts := range map[string][]ratelimit.Option{"uber": {ratelimit.WithoutSlack}, "uber-slack": nil} {
		b.Run("impl="+name, func(b *testing.B) {
			l := ratelimit.New(1_000_000_000, opts...)
			b.ReportAllocs()
			cpu := cpuClock(b)
			for b.Loop() {
				l.Take()
			}
			cpu.report(b)
		})
	}
}

// BenchmarkKeyedContention: 64 shards (impl=ours) against the same map
// behind one mutex (impl=single-mutex) and against the article's
// ShardedLimiter (impl=article: 64 RWMutex shards, a rate.Limiter and its
// mutex per key), RunParallel at goroutines = parallelism × GOMAXPROCS.
// key=spread checks 1,024 clients; key=hot one client, as a global limit or
// one busy tenant: every check then takes the same bucket's lock, which no
// sharding of the map splits.
func BenchmarkKeyedContention(b *testing.B) {
	r := rate.Limit(float64(roomy.Limit) / roomy.Window.Seconds())
	for _, key := range []string{"spread", "hot"} {
		mask := 1023
		if key == "hot" {
			mask = 0
		}
		for _, g := range []int{1, 2, 8, 64} {
			for _, impl := range []string{"ours", "single-mutex", "article"} {
				b.Run("key="+key+"/goroutines="+strconv.Itoa(g)+"/impl="+impl, func(b *testing.B) {
					check := func(string) {}
					switch impl {
					case "article":
						s := limiter.NewSharded(64)
						check = func(c string) { s.Allow(c, r, roomy.Limit) }
					default:
						shards := map[string]int{"ours": 64, "single-mutex": 1}[impl]
						k, err := limiter.New(limiter.Config{Policy: roomy, MaxKeys: 4096, Shards: shards})
						if err != nil {
							b.Fatal(err)
						}
						check = func(c string) { _, _ = k.Allow(context.Background(), c) }
					}
					var next atomic.Int64
					b.SetParallelism(max(1, g/parallelismUnit()))
					b.ReportAllocs()
					cpu := cpuClock(b)
					b.RunParallel(func(pb *testing.PB) {
						i := int(next.Add(97))
						for pb.Next() {
							i++
							check(clients[i&mask])
						}
					})
					cpu.report(b)
				})
			}
		}
	}
}

// BenchmarkSharedLimiter is the article's contention case: one rate.Limiter
// (a global limit) shared by every goroutine, for scale.
func BenchmarkSharedLimiter(b *testing.B) {
	l := rate.NewLimiter(rate.Inf, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow()
		}
	})
}

// BenchmarkRedisAllow: checks per second against the stack's Redis, with
// 8×GOMAXPROCS goroutines, reporting req/s, round trips per check and the
// Redis memory of one key after the run. algo=gcra and algo=counter are
// compared with go-redis/redis_rate (GCRA).
func BenchmarkRedisAllow(b *testing.B) {
	if err := stack.Reachable(stack.Redis, time.Second); err != nil {
		b.Skip("needs the stack's Redis: ", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), PoolSize: 64, MaxRetries: -1})
	defer rdb.Close()
	var rt trips
	rdb.AddHook(&rt)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	p := quota.Policy{Limit: quota.MaxLimit, Window: time.Minute}
	for _, algo := range []redislimit.Algorithm{redislimit.SlidingCounter, redislimit.GCRA, redislimit.FixedWindow, redislimit.SlidingLog} {
		b.Run("algo="+algo.String()+"/impl=ours", func(b *testing.B) {
			l, err := redislimit.New(rdb, algo, p, "rl:bench:"+run+":"+algo.String()+":")
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Load(b.Context()); err != nil {
				b.Fatal(err)
			}
			measure(b, rdb, &rt, func(ctx context.Context, key string) error { _, err := l.Allow(ctx, key); return err }, l.Key)
		})
		if algo != redislimit.SlidingCounter && algo != redislimit.GCRA {
			continue
		}
		b.Run("algo="+algo.String()+"/impl=redis_rate", func(b *testing.B) {
			l := redis_rate.NewLimiter(rdb)
			limit := redis_rate.Limit{Rate: p.Limit, Burst: p.Limit, Period: p.Window}
			prefix := "rl:bench:" + run + ":redis_rate:"
			measure(b, rdb, &rt, func(ctx context.Context, key string) error {
				_, err := l.Allow(ctx, prefix+key, limit)
				return err
			}, func(id string) string { return "rate:" + prefix + id })
		})
	}
}

// measure runs check in parallel on 64 client keys and reports throughput,
// round trips per check and MEMORY USAGE of one key.
func measure(b *testing.B, rdb *redis.Client, rt *trips, check func(context.Context, string) error, key func(string) string) {
	ctx := context.Background()
	if err := check(ctx, "warm"); err != nil {
		b.Fatal(err)
	}
	rt.n.Store(0)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7
		for pb.Next() {
			i++
			if err := check(ctx, clients[i&63]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
	if n, err := rdb.MemoryUsage(ctx, key(clients[0]), 0).Result(); err == nil {
		b.ReportMetric(float64(n), "redis-B/key")
	}
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = key(clients[i])
	}
	rdb.Del(ctx, append(keys, key("warm"))...)
}

// trips counts the commands sent for checks (not connection handshakes).
type trips struct{ n atomic.Int64 }

func (c *trips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *trips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" && cmd.Name() != "client" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *trips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() != "hello" && cmds[0].Name() != "client" {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}
