package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// table returns a writer that aligns tab-separated columns; Flush prints them.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// thousands formats n with comma separators: 10000000 → 10,000,000.
func thousands[T ~int | ~int64 | ~uint64](n T) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// redisConn is the Redis a scenario or the server uses: the stack's when it
// answers (and -redis auto), else an in-process miniredis.
type redisConn struct {
	client *redis.Client
	mini   *miniredis.Miniredis // nil for the real one
	name   string
	close  func()
}

// redisOptions are the client options of a limiter's Redis. Timeouts are
// short: a limiter that waits seconds for Redis has already failed. No
// command is retried: a check whose reply was lost may have run, and sending
// it again would count the request twice (TestARedisCheckIsNeverSentTwice).
func redisOptions() *redis.Options {
	return &redis.Options{DialTimeout: 250 * time.Millisecond, ReadTimeout: 250 * time.Millisecond,
		WriteTimeout: 250 * time.Millisecond, MaxRetries: -1, DialerRetries: 1}
}

// openRedis connects to the stack's Redis or starts miniredis.
func openRedis(ctx context.Context, mode string) (*redisConn, error) {
	opts := redisOptions()
	if mode == "auto" && stack.Reachable(stack.Redis, 500*time.Millisecond) == nil {
		opts.Addr = stack.RedisAddr()
		c := redis.NewClient(opts)
		if err := c.Ping(ctx).Err(); err == nil {
			return &redisConn{client: c, name: "Redis at " + opts.Addr, close: func() { _ = c.Close() }}, nil
		}
		_ = c.Close()
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, err
	}
	opts.Addr = mr.Addr()
	// The short timeouts are for a real Redis that stalls; the in-process
	// stand-in does not, and on a loaded machine under -race a Lua call
	// in miniredis can take longer than 250 ms.
	opts.ReadTimeout, opts.WriteTimeout = 5*time.Second, 5*time.Second
	c := redis.NewClient(opts)
	name := "miniredis (no Redis at " + stack.RedisAddr() + "; `make up` or REDIS_ADDR for the real one)"
	if mode != "auto" {
		name = "miniredis (-redis mini; -redis auto uses the stack's Redis at " + stack.RedisAddr() + " when it answers)"
	}
	return &redisConn{client: c, mini: mr, name: name, close: func() { _ = c.Close(); mr.Close() }}, nil
}

// openCluster connects to the stack's Redis Cluster, or returns nil and why not.
// onNode, if set, sees every node client before it is used (for hooks).
func openCluster(ctx context.Context, mode string, onNode func(*redis.Client)) (*redis.ClusterClient, string) {
	if mode != "auto" {
		return nil, "-redis mini"
	}
	if err := stack.Reachable(stack.RedisCluster, 500*time.Millisecond); err != nil {
		return nil, err.Error()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs(), DialTimeout: time.Second, ReadTimeout: time.Second})
	if onNode != nil {
		cc.OnNewNode(onNode)
	}
	if err := cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() }); err != nil {
		_ = cc.Close()
		return nil, err.Error()
	}
	return cc, ""
}
