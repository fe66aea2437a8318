package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

const maxKeys = 100_000

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// floodKey is the i-th distinct client of a flood ("2001:db8::<hex i>"): a
// rotating IPv6 address or a spoofed header, as a limiter sees it.
func floodKey(buf []byte, i int) string {
	buf = append(buf[:0], "hello:2001:db8::"...)
	return string(strconv.AppendInt(buf, int64(i), 16))
}

func memoryDemo(ctx context.Context, w io.Writer, o options) error {
	p := quota.Policy{Limit: 100, Window: time.Minute}
	fmt.Fprintf(w, "== Memory per key: in process (%v, a token bucket per key), then in Redis ==\n", p)
	tw := table(w)
	fmt.Fprintf(tw, "limiter\tkeys held after %s distinct keys\theap\tper key\n", thousands(o.flood))
	var buf []byte
	for _, bounded := range []bool{true, false} {
		h0 := heap()
		var held int
		name := "the article's ShardedLimiter (never evicts)"
		if bounded {
			k, err := limiter.New(limiter.Config{Policy: p, MaxKeys: maxKeys})
			if err != nil {
				return err
			}
			now := time.Now()
			for i := range o.flood {
				_, _ = k.AllowAt(floodKey(buf, i), now)
			}
			held = k.Len()
			name = fmt.Sprintf("limiter.Keyed, MaxKeys %s", thousands(maxKeys))
			defer runtime.KeepAlive(k)
		} else {
			m := limiter.NewSharded(64) // the article's ShardedLimiter
			r := rate.Limit(float64(p.Limit) / p.Window.Seconds())
			for i := range o.flood {
				m.Allow(floodKey(buf, i), r, p.Limit)
			}
			held = m.Len()
			defer runtime.KeepAlive(m)
		}
		used := heap() - h0
		fmt.Fprintf(tw, "%s\t%s\t%.1f MiB\t%.0f B\n", name, thousands(held), float64(used)/(1<<20), float64(used)/float64(held))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(Go maps keep their peak size after deletes: the cap, not eviction alone, is what bounds the heap.)")
	return redisMemory(ctx, w, o)
}

// counter counts the commands a Redis client sends for checks: not a new
// connection's handshake, nor what a cluster client fetches for itself.
type counter struct{ n atomic.Int64 }

func bookkeeping(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "cluster", "command":
		return true
	}
	return false
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !bookkeeping(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !bookkeeping(cmds[0]) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// redisMemory fills one key per algorithm as Limit requests leave it and
// asks Redis what it costs; it also counts round trips per check.
func redisMemory(ctx context.Context, w io.Writer, o options) error {
	r, err := openRedis(ctx, o.redis)
	if err != nil {
		return err
	}
	defer r.close()
	fmt.Fprintf(w, "Redis: %s\n", r.name)
	var rt counter
	r.client.AddHook(&rt)
	tw := table(w)
	fmt.Fprintln(tw, "algorithm\tlimit\tMEMORY USAGE after `limit` requests\tround trips per check")
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, tc := range []struct {
		algo  redislimit.Algorithm
		limit int
	}{
		{redislimit.SlidingLog, 100}, {redislimit.SlidingLog, 1000}, {redislimit.SlidingCounter, 100}, {redislimit.GCRA, 100}, {redislimit.FixedWindow, 100},
	} {
		l, err := redislimit.New(r.client, tc.algo, quota.Policy{Limit: tc.limit, Window: time.Minute}, "rl:mem:"+run+":")
		if err != nil {
			return err
		}
		if err := l.Load(ctx); err != nil {
			return err
		}
		id := tc.algo.String() + strconv.Itoa(tc.limit)
		rt.n.Store(0)
		for range tc.limit {
			if _, err := l.Allow(ctx, id); err != nil {
				return err
			}
		}
		trips := float64(rt.n.Load()) / float64(tc.limit)
		usage := "n/a: MEMORY USAGE needs a real Redis"
		if r.mini == nil {
			n, err := r.client.MemoryUsage(ctx, l.Key(id), 0).Result()
			if err != nil {
				return err
			}
			usage = thousands(n) + " B"
		}
		if err := r.client.Del(ctx, l.Key(id)).Err(); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\n", tc.algo, tc.limit, usage, trips)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "the log keeps one entry per admitted request (a listpack up to 128 entries, a skiplist above); the others keep O(1).")
	fmt.Fprintln(w)
	return nil
}
