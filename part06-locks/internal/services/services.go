// Package services connects the part06 demo to the stack's services when they
// answer, and to in-process stand-ins when they do not: three miniredis
// servers for the Redlock masters, one for the single Redis, an embedded etcd
// server (go.etcd.io/etcd/server/v3/embed, the same release as the stack's)
// and an in-memory fencing store for PostgreSQL.
package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part06-locks/fencing"
)

// Timeout bounds every dial, read and write on the real services, so a
// service that stops answering fails a demo section in about a second.
const Timeout = time.Second

// Env is where the demo runs.
type Env struct {
	Masters []redis.UniversalClient // the three Redlock masters
	Redis   redis.UniversalClient   // the single Redis (campaign counters, invariants)
	Etcd    *clientv3.Client
	Fence   fencing.Store

	// Prefix namespaces this run's Redis keys, etcd keys and fencing rows
	// ("part06:demo:<random>:"), so runs never meet.
	Prefix string

	RealRedlock, RealRedis, RealEtcd, RealPostgres bool

	minis     []*miniredis.Miniredis // stand-ins, in Masters order, then the single Redis
	etcdAddr  string
	stopEtcd  func()
	pool      *pgxpool.Pool
	etcdDir   string
	resources []string // fencing rows to delete at Close
}

// Open uses the stack's services when useStack is set and they answer, and
// in-process stand-ins otherwise (tests pass false, to stay independent of
// what happens to be running).
func Open(ctx context.Context, useStack bool) (_ *Env, err error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &Env{Prefix: "part06:demo:" + hex.EncodeToString(b) + ":"}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	up := func(svc stack.Service) bool { return useStack && stack.Reachable(svc, 500*time.Millisecond) == nil }

	if e.RealRedlock = up(stack.Redlock); e.RealRedlock {
		for _, a := range stack.RedlockAddrs() {
			e.Masters = append(e.Masters, redis.NewClient(realOptions(a)))
		}
	} else {
		for range 3 {
			e.Masters = append(e.Masters, e.mini(nil))
		}
	}
	if e.RealRedis = up(stack.Redis); e.RealRedis {
		e.Redis = redis.NewClient(realOptions(stack.RedisAddr()))
	} else {
		e.Redis = e.mini(nil)
	}
	for i, c := range append([]redis.UniversalClient{e.Redis}, e.Masters...) {
		if err := c.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("redis #%d: %w", i, err)
		}
	}

	if e.RealEtcd = up(stack.Etcd); e.RealEtcd {
		e.etcdAddr = stack.EtcdEndpoints()[0]
	} else {
		if e.etcdDir, err = os.MkdirTemp("", "part06-etcd-"); err != nil {
			return nil, err
		}
		if e.etcdAddr, e.stopEtcd, err = StartEtcd(e.etcdDir); err != nil {
			return nil, err
		}
	}
	if e.Etcd, err = e.EtcdClient(nil); err != nil {
		return nil, err
	}

	e.Fence = fencing.NewMemory()
	if e.RealPostgres = up(stack.Postgres); e.RealPostgres {
		if e.pool, err = openPostgres(ctx); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		e.Fence = fencing.NewPostgres(e.pool)
	}
	return e, nil
}

func realOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr: addr, PoolSize: 64, MaxRetries: -1,
		DialTimeout: Timeout, ReadTimeout: Timeout, WriteTimeout: Timeout,
		ContextTimeoutEnabled: true, // a lock attempt's deadline is the socket's deadline
	}
}

// mini starts a miniredis stand-in (TTLs run with the clock, as on a real
// Redis) and a client for it, through gate if gate is not nil.
func (e *Env) mini(gate *Gate) *redis.Client {
	mr := miniredis.NewMiniRedis()
	mr.ClockTTL(true)
	if err := mr.Start(); err != nil {
		panic(err) // a loopback listener that cannot open: nothing else would work either
	}
	e.minis = append(e.minis, mr)
	return e.miniClient(mr, gate)
}

func (e *Env) miniClient(mr *miniredis.Miniredis, gate *Gate) *redis.Client {
	o := &redis.Options{Addr: mr.Addr(), PoolSize: 64, MaxRetries: -1, ContextTimeoutEnabled: true}
	if gate != nil {
		o.Dialer = gate.DialContext
	}
	return redis.NewClient(o)
}

// EtcdClient returns a new client of the etcd server in use, dialling through
// gate if it is not nil. The caller closes it.
func (e *Env) EtcdClient(gate *Gate) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints: []string{e.etcdAddr}, DialTimeout: 2 * Timeout, Logger: zap.NewNop(),
		// gRPC pings find a server that stopped answering (paused, partitioned)
		// in a few seconds, instead of never for a call without a deadline.
		DialKeepAliveTime: 2 * Timeout, DialKeepAliveTimeout: 2 * Timeout,
	}
	if gate != nil {
		cfg.DialOptions = []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return gate.DialContext(ctx, "tcp", addr)
		})}
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd at %s: %w", e.etcdAddr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*Timeout)
	defer cancel()
	if _, err := c.Get(ctx, "health"); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("etcd at %s: %w", e.etcdAddr, err)
	}
	return c, nil
}

// GatedMasters returns new clients of the Redlock masters whose connections go
// through gate. The caller closes them.
func (e *Env) GatedMasters(gate *Gate) []redis.UniversalClient {
	var out []redis.UniversalClient
	for i := range e.Masters {
		if e.RealRedlock {
			o := realOptions(stack.RedlockAddrs()[i])
			o.Dialer = gate.DialContext
			out = append(out, redis.NewClient(o))
		} else {
			out = append(out, e.miniClient(e.minis[i], gate))
		}
	}
	return out
}

// Resource returns name prefixed for this run; Close deletes its fencing row.
func (e *Env) Resource(name string) string {
	r := e.Prefix + name
	e.resources = append(e.resources, r)
	return r
}

// EtcdPrefix is this run's etcd lock prefix.
func (e *Env) EtcdPrefix() string { return "/" + strings.ReplaceAll(e.Prefix, ":", "/") + "locks/" }

// Describe says which services the run uses, and how to use the real ones.
func (e *Env) Describe(w io.Writer) {
	line := func(name string, real bool, realDesc, standIn string) {
		if real {
			fmt.Fprintf(w, "%-11s %s\n", name+":", realDesc)
		} else {
			fmt.Fprintf(w, "%-11s %s (`make up` or `scripts/stack up redis redlock etcd postgres` for the real one)\n", name+":", standIn)
		}
	}
	line("Redlock", e.RealRedlock, "3 Redis masters at "+strings.Join(stack.RedlockAddrs(), ", "), "3 miniredis servers in-process")
	line("Redis", e.RealRedis, "Redis at "+stack.RedisAddr(), "miniredis in-process")
	line("etcd", e.RealEtcd, "etcd at "+e.etcdAddr, "embedded etcd server (go.etcd.io/etcd/server/v3/embed) at "+e.etcdAddr)
	line("PostgreSQL", e.RealPostgres, "PostgreSQL, table part06.fenced", "in-memory fencing store")
}

// Close deletes this run's keys and rows and stops the stand-ins.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*Timeout)
	defer cancel()
	for _, c := range append([]redis.UniversalClient{e.Redis}, e.Masters...) {
		if c == nil {
			continue
		}
		if keys, err := c.Keys(ctx, e.Prefix+"*").Result(); err == nil && len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
		_ = c.Close()
	}
	if e.Etcd != nil {
		_, _ = e.Etcd.Delete(ctx, "/"+strings.ReplaceAll(e.Prefix, ":", "/"), clientv3.WithPrefix())
		_ = e.Etcd.Close()
	}
	if pg, ok := e.Fence.(*fencing.Postgres); ok {
		for _, r := range e.resources {
			_ = pg.Delete(ctx, r)
		}
	}
	if e.pool != nil {
		e.pool.Close()
	}
	for _, mr := range e.minis {
		mr.Close()
	}
	if e.stopEtcd != nil {
		e.stopEtcd()
	}
	if e.etcdDir != "" {
		_ = os.RemoveAll(e.etcdDir)
	}
}

func openPostgres(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(stack.DatabaseURL())
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.ConnectTimeout = 2 * Timeout
	ctx, cancel := context.WithTimeout(ctx, 5*Timeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(pool.Ping(ctx), fencing.Migrate(ctx, pool)); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
