package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

var accuracyPolicy = quota.Policy{Limit: 10, Window: 10 * time.Second}

// edge is a window edge for every algorithm: fixed windows start at
// multiples of the window since the epoch.
var edge = time.Unix(1_750_000_000-1_750_000_000%3600, 0)

type scenario struct {
	name     string
	arrivals []time.Duration
}

func burst(n int, at time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = at
	}
	return out
}

func scenarios() []scenario {
	var steady []time.Duration
	for t := time.Duration(0); t < 20*time.Second; t += 500 * time.Millisecond {
		steady = append(steady, t)
	}
	return []scenario{
		{"10 at 9.9 s, 10 at 10.1 s (straddling an edge)", append(burst(10, 9900*time.Millisecond), burst(10, 10100*time.Millisecond)...)},
		{"10 at 9.9 s, 10 at 19.0 s (ends of two windows)", append(burst(10, 9900*time.Millisecond), burst(10, 19*time.Second)...)},
		{"2 per second for 20 s (twice the rate)", steady},
	}
}

// algorithm decides one request at a given instant.
type algorithm struct {
	name  string
	allow func(at time.Time) (bool, error)
}

// algorithms builds fresh instances for one scenario: Redis scripts on a
// miniredis whose clock is set to each request's instant, local limiters
// told the instant, and the ideal sliding window as the reference.
func algorithms(mr *miniredis.Miniredis, rdb *redis.Client, run int) ([]algorithm, error) {
	var out []algorithm
	var ideal []time.Time
	out = append(out, algorithm{"ideal", func(at time.Time) (bool, error) {
		if quota.MaxInWindow(append(ideal, at), accuracyPolicy.Window) > accuracyPolicy.Limit {
			return false, nil
		}
		ideal = append(ideal, at)
		return true, nil
	}})
	for _, a := range []redislimit.Algorithm{redislimit.SlidingLog, redislimit.SlidingCounter, redislimit.GCRA, redislimit.FixedWindow} {
		l, err := redislimit.New(rdb, a, accuracyPolicy, fmt.Sprintf("rl:acc:%d:%s:", run, a))
		if err != nil {
			return nil, err
		}
		out = append(out, algorithm{a.String(), func(at time.Time) (bool, error) {
			mr.SetTime(at)
			d, err := l.Allow(context.Background(), "c")
			return d.Allowed, err
		}})
	}
	tb, err := limiter.New(limiter.Config{Policy: accuracyPolicy, MaxKeys: 1})
	if err != nil {
		return nil, err
	}
	out = append(out, algorithm{"token", func(at time.Time) (bool, error) {
		d, err := tb.AllowAt("c", at)
		return d.Allowed, err
	}})
	lk, err := limiter.NewLeaky(accuracyPolicy, 0)
	if err != nil {
		return nil, err
	}
	out = append(out, algorithm{"leaky", func(at time.Time) (bool, error) {
		_, ok := lk.Reserve(at)
		return ok, nil
	}})
	return out, nil
}

func accuracyDemo(_ context.Context, w io.Writer, _ options) error {
	fmt.Fprintf(w, "== Accuracy at window edges: %v; cells are admitted (most in any %v window) ==\n", accuracyPolicy, accuracyPolicy.Window)
	fmt.Fprintln(w, "log, counter, gcra, fixed: the Redis scripts, replayed on miniredis with its clock set to each request's instant;")
	fmt.Fprintln(w, "token: x/time/rate via limiter.Keyed (burst 10); leaky: limiter.Leaky as a meter; ideal: never more than 10 in any window")
	mr, err := miniredis.Run()
	if err != nil {
		return err
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	tw := table(w)
	var header string
	for i, sc := range scenarios() {
		algos, err := algorithms(mr, rdb, i)
		if err != nil {
			return err
		}
		if i == 0 {
			header = "scenario"
			for _, a := range algos {
				header += "\t" + a.name
			}
			fmt.Fprintln(tw, header)
		}
		fmt.Fprint(tw, sc.name)
		for _, a := range algos {
			var at []time.Time
			for _, off := range sc.arrivals {
				t := edge.Add(off)
				ok, err := a.allow(t)
				if err != nil {
					return fmt.Errorf("%s: %w", a.name, err)
				}
				if ok {
					at = append(at, t)
				}
			}
			fmt.Fprintf(tw, "\t%d (%d)", len(at), quota.MaxInWindow(at, accuracyPolicy.Window))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "only the sliding log matches the ideal; the counter, token bucket and GCRA bound a rate, so two bursts one window")
	fmt.Fprintln(w, "apart fit nearly 2× the limit into one window; the fixed window lets 2× through in 0.2 s; the leaky meter never bursts.")
	fmt.Fprintln(w)
	return nil
}
