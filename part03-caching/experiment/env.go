// Package experiment runs the chapter's demos: the pattern tour, the stampede
// experiment, the Shopee flash-sale figure at this machine's scale and the Redis LFU
// demo. main.go only parses flags and calls it; every number it prints is measured in
// the run.
package experiment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part03-caching/patterns"
)

// Env is where a demo runs: the stack's Redis and PostgreSQL when they answer, else
// miniredis and an in-memory store.
type Env struct {
	Redis   *redis.Client
	Counter *CommandCounter // counts every command this process sends to Redis
	Store   patterns.Store
	// Prefix namespaces this run's Redis keys and product IDs ("part03:demo:<random>:").
	Prefix string

	RealRedis, RealPostgres bool

	mr   *miniredis.Miniredis
	pool *pgxpool.Pool
}

// SimulatedDBLatency is the in-memory store's per-call delay, so that write latencies
// differ between patterns as they would against a database.
const SimulatedDBLatency = time.Millisecond

// Connect uses the stack's Redis and PostgreSQL when useStack is set and they
// answer, and in-process stand-ins otherwise (tests pass false, to stay independent
// of what happens to be running).
func Connect(ctx context.Context, useStack bool) (*Env, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &Env{Prefix: "part03:demo:" + hex.EncodeToString(b) + ":", Counter: &CommandCounter{}}

	addr := stack.RedisAddr()
	if useStack && stack.Reachable(stack.Redis, 500*time.Millisecond) == nil {
		e.RealRedis = true
	} else {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, err
		}
		e.mr, addr = mr, mr.Addr()
	}
	e.Redis = redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	e.Redis.AddHook(e.Counter)
	if err := e.Redis.Ping(ctx).Err(); err != nil {
		e.Close()
		return nil, fmt.Errorf("redis at %s: %w", addr, err)
	}

	e.Store = patterns.NewMemStore(SimulatedDBLatency)
	if useStack && stack.Reachable(stack.Postgres, 500*time.Millisecond) == nil {
		pool, err := pgxpool.New(ctx, stack.DatabaseURL())
		if err == nil {
			err = pool.Ping(ctx)
		}
		if err == nil {
			err = patterns.Migrate(ctx, pool)
		}
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
		e.pool, e.Store, e.RealPostgres = pool, patterns.PGStore{Pool: pool}, true
	}
	return e, nil
}

// Describe says which services the run uses, and how to use the real ones.
func (e *Env) Describe(w io.Writer) {
	if e.RealRedis {
		fmt.Fprintf(w, "Redis:      real Redis at %s\n", stack.RedisAddr())
	} else {
		fmt.Fprintf(w, "Redis:      miniredis in-process (no Redis at %s; `make up` starts the stack)\n", stack.RedisAddr())
	}
	if e.RealPostgres {
		fmt.Fprintln(w, "PostgreSQL: real PostgreSQL (schema part03)")
	} else {
		fmt.Fprintf(w, "PostgreSQL: in-memory store, %v simulated per call (no PostgreSQL reachable; `make up` starts the stack)\n", SimulatedDBLatency)
	}
}

// Close deletes this run's keys and rows and closes the connections.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.Redis != nil {
		if e.RealRedis {
			iter := e.Redis.Scan(ctx, 0, e.Prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				e.Redis.Del(ctx, iter.Val())
			}
		}
		_ = e.Redis.Close()
	}
	if e.mr != nil {
		e.mr.Close()
	}
	if e.pool != nil {
		_ = patterns.PGStore{Pool: e.pool}.DeletePrefix(ctx, e.Prefix)
		e.pool.Close()
	}
}

// CommandCounter is a go-redis hook that counts commands sent, pipelines included,
// leaving out the handshake go-redis sends on each new connection.
type CommandCounter struct{ total, gets atomic.Int64 }

// DialHook implements redis.Hook.
func (c *CommandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *CommandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *CommandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *CommandCounter) count(cmd redis.Cmder) {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return // a new pool connection's handshake, not load the cache puts on Redis
	case "get":
		c.gets.Add(1)
	}
	c.total.Add(1)
}

// Total returns the commands counted so far.
func (c *CommandCounter) Total() int64 { return c.total.Load() }

// Gets returns the GET commands counted so far.
func (c *CommandCounter) Gets() int64 { return c.gets.Load() }
