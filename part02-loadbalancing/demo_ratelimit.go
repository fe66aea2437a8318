package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/ratelimit"
)

// rateLimitDemo shows the per-client token bucket in front of the L7 proxy,
// how clients escape a limiter keyed like the article's, and the Redis
// fixed window with both failure policies.
func rateLimitDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== Per-client token bucket (x/time/rate) in front of the L7 proxy: 5 tokens/s, burst 10 ==")
	// The limiter's clock stands still while the 15 requests go out, then
	// moves 250 ms: on the wall clock a busy machine took more than the
	// 200 ms a token takes, and the burst printed a refill it did not mean.
	clock := &stoppedClock{t: time.Now()}
	pc, err := ratelimit.NewPerClient(ratelimit.PerClientConfig{Rate: 5, Burst: 10, Now: clock.now})
	if err != nil {
		return err
	}
	defer pc.Close()
	l, err := startLab(labConfig{opts: fleetOf(2, fleet.Options{}), algo: rr, wrap: (&ratelimit.Middleware{Limiter: pc}).Wrap})
	if err != nil {
		return err
	}
	defer l.close()
	var first429 *answer
	var codes []string
	for range 15 {
		a, err := send(ctx, l.client, "GET", l.l7URL+"/", "")
		if err != nil {
			return err
		}
		codes = append(codes, fmt.Sprintf("%d(%s)", a.status, a.header.Get("X-RateLimit-Remaining")))
		if a.status == http.StatusTooManyRequests && first429 == nil {
			first429 = &a
		}
	}
	fmt.Fprintf(w, "15 requests at once, status(X-RateLimit-Remaining): %s\n", strings.Join(codes, " "))
	if first429 == nil {
		return errors.New("no request was limited")
	}
	fmt.Fprintf(w, "the first 429: Retry-After: %s, X-RateLimit-Limit: %s, X-RateLimit-Remaining: %s, Content-Type: %s\n  %s\n",
		first429.header.Get("Retry-After"), first429.header.Get("X-RateLimit-Limit"), first429.header.Get("X-RateLimit-Remaining"),
		first429.header.Get("Content-Type"), first429.body)
	clock.advance(250 * time.Millisecond) // one token at 5/s
	a, err := send(ctx, l.client, "GET", l.l7URL+"/", "")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "250 ms later (one token back): %d\n", a.status)

	if err := keyDemo(ctx, w); err != nil {
		return err
	}
	return redisDemo(ctx, w, o)
}

func rr([]*balancer.Backend) balancer.Algorithm { return new(balancer.RoundRobin) }

// stoppedClock is a clock that moves only when told.
type stoppedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stoppedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stoppedClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// keyDemo sends 50 requests per row from one client that changes what the
// article's key depends on, to a limiter keyed like the article (the raw
// X-Forwarded-For, else RemoteAddr with its port) and to this package's
// (the peer's address; no proxy trusted).
func keyDemo(ctx context.Context, w io.Writer) error {
	articleKey := func(r *http.Request) string {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			return xff
		}
		return r.RemoteAddr
	}
	passed := func(key func(*http.Request) string, fresh bool, spoof bool) (int, error) {
		pc, err := ratelimit.NewPerClient(ratelimit.PerClientConfig{Rate: 0.01, Burst: 10})
		if err != nil {
			return 0, err
		}
		defer pc.Close()
		addr, stop, err := serveHTTP((&ratelimit.Middleware{Limiter: pc, Key: key}).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
		if err != nil {
			return 0, err
		}
		defer stop()
		tr := &http.Transport{DisableKeepAlives: fresh}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		n := 0
		for i := range 50 {
			var hdr []string
			if spoof {
				hdr = []string{"X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i+1)}
			}
			a, err := send(ctx, c, "GET", "http://"+addr+"/", "", hdr...)
			if err != nil {
				return 0, err
			}
			if a.status == http.StatusOK {
				n++
			}
		}
		return n, nil
	}
	tw := table(w)
	fmt.Fprintln(tw, "one client, 50 requests, burst 10\tpassed, keyed like the article\tpassed, keyed here (peer address)")
	for _, row := range []struct {
		name         string
		fresh, spoof bool
	}{
		{"each with a new X-Forwarded-For", false, true},
		{"each on a new connection (new source port)", true, false},
	} {
		art, err := passed(articleKey, row.fresh, row.spoof)
		if err != nil {
			return err
		}
		ours, err := passed(nil, row.fresh, row.spoof)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", row.name, art, ours)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// redisDemo runs the fixed-window limiter on the stack's Redis, or on an
// in-process miniredis whose clock the demo moves.
func redisDemo(ctx context.Context, w io.Writer, o options) error {
	var client *redis.Client
	advance := func(d time.Duration) { time.Sleep(d) }
	which := ""
	err := stack.Reachable(stack.Redis, time.Second)
	switch {
	case o.redis == "stack" && err != nil:
		return err
	case o.redis == "stack" || (o.redis == "auto" && err == nil):
		client = redis.NewClient(ratelimit.LimiterOptions(redis.Options{Addr: stack.RedisAddr()}))
		which = "the stack's Redis at " + stack.RedisAddr()
	default:
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return err
		}
		defer mr.Close()
		client = redis.NewClient(ratelimit.LimiterOptions(redis.Options{Addr: mr.Addr()}))
		advance = mr.FastForward
		which = "in-process miniredis, its clock moved by the demo (-redis miniredis)"
		if o.redis == "auto" {
			which = "in-process miniredis, its clock moved by the demo: the stack's Redis is unreachable (`make up` or REDIS_ADDR to use it)"
		}
	}
	defer client.Close()
	fmt.Fprintf(w, "== Redis fixed window (INCR, then PEXPIRE on the first hit, in one script): 5 requests per second per client ==\nRedis: %s\n", which)
	// A generous Timeout: this section counts; the 100 ms default, a budget
	// for a request path, made the demo fail on a busy machine.
	f := &ratelimit.FixedWindow{Client: client, Limit: 5, Window: time.Second, Prefix: fmt.Sprintf("part02:demo:%d:", time.Now().UnixNano()), Timeout: 5 * time.Second}
	var codes []string
	for range 8 {
		d, err := f.Allow(ctx, "client-a")
		if err != nil {
			return err
		}
		codes = append(codes, fmt.Sprintf("%v", d.Allowed))
		if !d.Allowed && len(codes) == 6 {
			codes[5] += fmt.Sprintf("(Retry-After %ds)", ratelimit.RetryAfterSeconds(d.RetryAfter))
		}
	}
	fmt.Fprintf(w, "8 requests at once, allowed: %s\n", strings.Join(codes, " "))
	// The boundary: one request opens the window, 4 more at 0.9 s, 5 at 1.1 s.
	n := 0
	count := func(k int) error {
		for range k {
			d, err := f.Allow(ctx, "client-b")
			if err != nil {
				return err
			}
			if d.Allowed {
				n++
			}
		}
		return nil
	}
	if err := count(1); err != nil {
		return err
	}
	advance(900 * time.Millisecond)
	if err := count(4); err != nil {
		return err
	}
	advance(200 * time.Millisecond)
	if err := count(5); err != nil {
		return err
	}
	fmt.Fprintf(w, "across a window boundary (1 at 0 s, 4 at 0.9 s, 5 at 1.1 s): %d of 10 allowed, 9 within 0.2 s: a fixed window, not the article's \"sliding window\" (part 11 has those)\n", n)

	// Redis unreachable: a closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	dead := ln.Addr().String()
	ln.Close()
	down := redis.NewClient(ratelimit.LimiterOptions(redis.Options{Addr: dead}))
	defer down.Close()
	tw := table(w)
	fmt.Fprintln(tw, "Redis down, policy\tanswer\treported error")
	for _, p := range []ratelimit.Policy{ratelimit.FailOpen, ratelimit.FailClosed} {
		reported := make(chan error, 1)
		m := &ratelimit.Middleware{Limiter: &ratelimit.FixedWindow{Client: down, Limit: 5, Window: time.Second}, OnError: p,
			Errors: func(err error) {
				select {
				case reported <- err:
				default:
				}
			}}
		addr, stop, err := serveHTTP(m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
		if err != nil {
			return err
		}
		a, err := send(ctx, &http.Client{Timeout: 10 * time.Second}, "GET", "http://"+addr+"/login", "")
		stop()
		if err != nil {
			return err
		}
		ans := fmt.Sprint(a.status)
		if ra := a.header.Get("Retry-After"); ra != "" {
			ans += ", Retry-After: " + ra
		}
		msg := "-"
		select {
		case err := <-reported:
			msg = strings.Replace(err.Error(), dead, "<closed port>", 1)
		default:
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p, ans, msg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "fail-open for ordinary traffic, fail-closed for login and payment: the article's advice, which its limiter cannot follow (it returns true, nil on any error)")
	fmt.Fprintln(w)
	return nil
}
