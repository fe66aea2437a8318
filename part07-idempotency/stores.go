package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/memstore"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/pgstore"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/redisstore"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/payments"
)

// backend is one idempotency store, opened and labelled.
type backend struct {
	name  string                 // memory | Redis | PostgreSQL
	where string                 // how it is reached, for the output
	store *counting              // counts store calls
	rt    *redisstore.RoundTrips // Redis only: round trips, from a go-redis hook
	pool  *pgxpool.Pool          // PostgreSQL only, for the payments table
	close func()
}

// counting is an idempotency.Store that counts calls: on Redis each is one
// round trip, on PostgreSQL one statement.
type counting struct {
	idempotency.Store
	calls atomic.Int64
}

func (c *counting) Claim(ctx context.Context, k idempotency.Key, r idempotency.Record, ttl time.Duration) (*idempotency.Record, error) {
	c.calls.Add(1)
	return c.Store.Claim(ctx, k, r, ttl)
}

func (c *counting) Renew(ctx context.Context, k idempotency.Key, r idempotency.Record, ttl time.Duration) error {
	c.calls.Add(1)
	return c.Store.Renew(ctx, k, r, ttl)
}

func (c *counting) Complete(ctx context.Context, k idempotency.Key, r idempotency.Record, ttl time.Duration) error {
	c.calls.Add(1)
	return c.Store.Complete(ctx, k, r, ttl)
}

func (c *counting) Release(ctx context.Context, k idempotency.Key, token string) error {
	c.calls.Add(1)
	return c.Store.Release(ctx, k, token)
}

// openBackends opens the stores -store names. "auto" is every store the
// machine has: memory, Redis (miniredis standing in if the stack's is not
// running) and PostgreSQL (skipped, with a line saying so, if not running).
func openBackends(ctx context.Context, w io.Writer, which string) ([]backend, error) {
	kinds := []string{which}
	if which == "auto" {
		kinds = []string{"memory", "redis", "postgres"}
	}
	var out []backend
	for _, kind := range kinds {
		b, err := openBackend(ctx, kind, which == "auto")
		var skip *unavailable
		switch {
		case errors.As(err, &skip):
			fmt.Fprintln(w, skip.line)
			continue
		case err != nil:
			for _, o := range out {
				o.close()
			}
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// unavailable is a store "auto" leaves out, with the line that says so.
type unavailable struct{ line string }

func (u *unavailable) Error() string { return u.line }

// openBackend opens one store. With standIn, a Redis that is not running is
// replaced by miniredis and a PostgreSQL that is not running is *unavailable;
// without it, either is an error.
func openBackend(ctx context.Context, kind string, standIn bool) (backend, error) {
	switch kind {
	case "memory":
		return backend{name: "memory", where: "memstore, this process only", store: &counting{Store: memstore.New()}, close: func() {}}, nil
	case "redis":
		if err := stack.Reachable(stack.Redis, time.Second); err != nil {
			if !standIn {
				return backend{}, fmt.Errorf("redis: %w; start it with `make up` or set %s", err, stack.EnvRedis)
			}
			return miniredisBackend()
		}
		return redisBackend(ctx, stack.RedisAddr(), "")
	case "postgres":
		pool, err := openPostgres(ctx)
		if err != nil {
			if !standIn {
				return backend{}, fmt.Errorf("postgres: %w; start it with `make up` or set %s", err, stack.EnvPostgres)
			}
			return backend{}, &unavailable{fmt.Sprintf("PostgreSQL: not reachable (%v), left out; run `make up` or set %s to include it", err, stack.EnvPostgres)}
		}
		return backend{name: "PostgreSQL", where: "pgstore, " + redacted(stack.DatabaseURL()), store: &counting{Store: pgstore.New(pool)}, pool: pool, close: pool.Close}, nil
	}
	return backend{}, fmt.Errorf("unknown store %q", kind)
}

// miniredisBackend is the in-process stand-in for Redis.
func miniredisBackend() (backend, error) {
	m, err := miniredis.Run()
	if err != nil {
		return backend{}, err
	}
	b, err := redisBackend(context.Background(), m.Addr(), "miniredis stand-in (the stack's Redis is not running; `make up` or set "+stack.EnvRedis+" to use it)")
	if err != nil {
		m.Close()
		return backend{}, err
	}
	closeRedis := b.close
	b.close = func() { closeRedis(); m.Close() }
	return b, nil
}

// redisBackend connects to addr and checks the server can run SET NX GET
// (Redis 7.0 or later). ContextTimeoutEnabled makes each call end at its
// context's deadline (the middleware's StoreTimeout); without it go-redis
// waits out its ReadTimeout.
func redisBackend(ctx context.Context, addr, where string) (backend, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ContextTimeoutEnabled: true})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if where == "" {
		info, err := rdb.Info(ctx, "server").Result()
		if err != nil {
			_ = rdb.Close()
			return backend{}, fmt.Errorf("redis at %s: %w", addr, err)
		}
		version := infoField(info, "redis_version")
		if major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0]); major < 7 {
			_ = rdb.Close()
			return backend{}, fmt.Errorf("redis at %s is %s; redisstore needs 7.0 or later (SET with NX and GET)", addr, version)
		}
		where = fmt.Sprintf("redisstore, Redis %s at %s", version, addr)
	}
	s := redisstore.New(rdb)
	if err := s.Preload(ctx); err != nil {
		_ = rdb.Close()
		return backend{}, err
	}
	var rt redisstore.RoundTrips
	rdb.AddHook(&rt)
	return backend{name: "Redis", where: where, store: &counting{Store: s}, rt: &rt, close: func() { _ = rdb.Close() }}, nil
}

func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return "unknown"
}

// openPostgres connects to DATABASE_URL and creates the chapter's tables,
// giving up within a few seconds so the demo stays quick without a database.
func openPostgres(ctx context.Context) (*pgxpool.Pool, error) {
	if err := stack.Reachable(stack.Postgres, time.Second); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := pgstore.Config(stack.DatabaseURL())
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := errors.Join(pgstore.Migrate(ctx, pool), payments.Migrate(ctx, pool)); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// redacted hides the password in a connection URL before it is printed.
func redacted(dsn string) string {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return "(unparseable DATABASE_URL)"
	}
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}
