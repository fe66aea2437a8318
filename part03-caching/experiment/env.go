// Package experiment runs the chapter's demos: the pattern tour, the stampede
// experiment, the Shopee flash-sale figure at this machine's scale and the Redis LFU
// demo. main.go only parses flags, calls it and prints; every number it prints is
// measured in the run.
package experiment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part03-caching/patterns"
)

// Env is where a demo runs: the stack's Redis and PostgreSQL when they answer, else
// an in-memory miniredis and an in-memory store.
type Env struct {
	Redis   *redis.Client
	Counter *CommandCounter // counts every command this process sends to Redis
	Store   patterns.Store
	// Prefix namespaces this run's Redis keys and product IDs ("part03:demo:<random>:").
	Prefix string

	RealRedis, RealPostgres bool

	mr   *miniredis.Miniredis
	pool *pgxpool.Pool

	failure atomic.Pointer[ServiceError]
	cancel  atomic.Pointer[context.CancelCauseFunc] // the running section's
}

// SimulatedDBLatency is the in-memory store's per-call delay, so that write latencies
// differ between patterns as they would against a database.
const SimulatedDBLatency = time.Millisecond

// RedisTimeout bounds every dial, read and write on the stack's Redis, so that a
// Redis that stops answering (killed, paused) stops the demo within about a second
// instead of after go-redis's defaults (5 s dial, 3 s read, 3 retries).
const RedisTimeout = time.Second

// ServiceError is a stack service that failed while a demo ran: the demo stops,
// since numbers measured against a dead service are not meaningful.
type ServiceError struct {
	Service stack.Service
	Addr    string
	Err     error
}

func (e *ServiceError) Error() string {
	return fmt.Sprintf("%s at %s stopped answering: %v", e.Service, e.Addr, e.Err)
}

func (e *ServiceError) Unwrap() error { return e.Err }

// Paused reports whether the service looked stalled (a timeout) rather than gone.
func (e *ServiceError) Paused() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// Connect uses the stack's Redis and PostgreSQL when useStack is set and they
// answer, and in-process stand-ins otherwise (tests pass false, to stay independent
// of what happens to be running).
func Connect(ctx context.Context, useStack bool) (*Env, error) { return connect(ctx, useStack, false) }

// connect with inMemory set serves the miniredis stand-in over in-memory pipes
// instead of a loopback port: slower, but usable inside a testing/synctest bubble.
func connect(ctx context.Context, useStack, inMemory bool) (*Env, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &Env{Prefix: "part03:demo:" + hex.EncodeToString(b) + ":", Counter: &CommandCounter{}}

	if useStack && stack.Reachable(stack.Redis, 500*time.Millisecond) == nil {
		e.RealRedis = true
		e.Redis = redis.NewClient(&redis.Options{
			Addr: stack.RedisAddr(), PoolSize: 64,
			DialTimeout: RedisTimeout, ReadTimeout: RedisTimeout, WriteTimeout: RedisTimeout,
			PoolTimeout: 2 * RedisTimeout, MaxRetries: -1, DialerRetries: 1,
		})
	} else {
		e.mr = miniredis.NewMiniRedis()
		e.mr.ClockTTL(true) // TTLs run with the clock, as on a real Redis
		o := &redis.Options{PoolSize: 64}
		if inMemory {
			o.Addr = "127.0.0.1:6379" // never dialled; an IP literal keeps NewClient from resolving a name
			o.Dialer = func(context.Context, string, string) (net.Conn, error) { return e.mr.Dial() }
			o.PoolSize = 256 // no caller waits for a connection (go-redis's wait path pools timers across bubbles)
		} else if err := e.mr.Start(); err != nil {
			return nil, err
		} else {
			o.Addr = e.mr.Addr()
		}
		e.Redis = redis.NewClient(o)
	}
	e.Redis.AddHook(e.Counter)
	e.Redis.AddHook(failureHook{e})
	if err := e.Redis.Ping(ctx).Err(); err != nil {
		e.Close()
		return nil, fmt.Errorf("redis at %s: %w", stack.RedisAddr(), err)
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

// Section returns a context for one demo section that ends as soon as Redis fails
// (context.Cause is then a *ServiceError), and a function that ends it.
func (e *Env) Section(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	e.cancel.Store(&cancel)
	if f := e.failure.Load(); f != nil {
		cancel(f)
	}
	return ctx, func() { e.cancel.Store(nil); cancel(nil) }
}

// Failure returns the first Redis failure seen, or nil.
func (e *Env) Failure() *ServiceError { return e.failure.Load() }

// failureHook records the first Redis command that failed for a reason other than a
// miss or the caller's own context, and ends the running section.
type failureHook struct{ e *Env }

func (h failureHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h failureHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(err)
		return err
	}
}

func (h failureHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(err)
		return err
	}
}

func (h failureHook) check(err error) {
	var reply redis.Error // an error reply: Redis answered
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &reply) {
		return
	}
	se := &ServiceError{Service: stack.Redis, Addr: stack.RedisAddr(), Err: err}
	if h.e.failure.CompareAndSwap(nil, se) {
		if c := h.e.cancel.Load(); c != nil {
			(*c)(se)
		}
	}
}

// Close deletes this run's keys and rows and closes the connections.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.Redis != nil {
		if e.RealRedis && e.Failure() == nil {
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
