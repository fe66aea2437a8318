// Package part06bench compares chapter 6's lockers with the anchor libraries
// on the stack's servers, one uncontended lock cycle (lock, empty critical
// section, unlock) per op:
//
//   - one Redis: lock.Redlock over one master (with its fencing counter and
//     its renewal timer) against go-redsync/redsync v4 and bsm/redislock,
//     neither of which hands out a fencing token; and the token's cost alone
//     (BenchmarkRedisFencingToken);
//   - three Redlock masters: lock.Redlock against redsync;
//   - etcd: lock.Etcd (one lease per process, the token from the key's create
//     revision) against concurrency.Mutex on a new session per lock (the
//     article's shape) and on one long-lived session.
//
// Each reports cmds/op (Redis commands sent per cycle) or the raft writes
// behind it, beside the time. Contenders are sub-benchmarks keyed impl=NAME
// (impl=ours is this project's); the benchmarks skip when the stack is down.
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 5 ./part06/
package part06bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	rsredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part06-locks/lock"
)

// commands counts the commands a client sends.
type commands struct{ n atomic.Int64 }

func (c *commands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

func clients(b *testing.B, svc stack.Service, addrs []string) ([]redis.UniversalClient, *commands) {
	b.Helper()
	if err := stack.Reachable(svc, time.Second); err != nil {
		b.Skip("needs the stack's ", svc, ": ", err)
	}
	cmds := &commands{}
	var out []redis.UniversalClient
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1, ContextTimeoutEnabled: true})
		if err := c.Ping(b.Context()).Err(); err != nil { // the connection is open before the clock starts
			b.Fatal(err)
		}
		c.AddHook(cmds)
		b.Cleanup(func() { _ = c.Close() })
		out = append(out, c)
	}
	return out, cmds
}

// cycle runs b.N lock cycles and reports the commands each took.
func cycle(b *testing.B, cmds *commands, f func(ctx context.Context) error) {
	b.Helper()
	ctx := b.Context()
	if err := f(ctx); err != nil { // warm up: scripts loaded, connections open
		b.Fatal(err)
	}
	var before int64
	if cmds != nil {
		before = cmds.n.Load()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := f(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if cmds != nil {
		b.ReportMetric(float64(cmds.n.Load()-before)/float64(b.N), "cmds/op")
	}
}

func key(b *testing.B) string { return fmt.Sprintf("part06:bench:%d", time.Now().UnixNano()) }

func noop(context.Context, int64) error { return nil }

func redlockContenders(b *testing.B, masters []redis.UniversalClient, cmds *commands) {
	ours, err := lock.NewRedlock(masters, lock.RedlockConfig{Prefix: key(b) + ":"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("impl=ours", func(b *testing.B) {
		cycle(b, cmds, func(ctx context.Context) error { return ours.ExecuteWithLock(ctx, "r", 10*time.Second, noop) })
	})
	var pools []rsredis.Pool
	for _, m := range masters {
		pools = append(pools, goredis.NewPool(m))
	}
	rs, name := redsync.New(pools...), key(b)
	b.Run("impl=redsync", func(b *testing.B) {
		cycle(b, cmds, func(ctx context.Context) error {
			m := rs.NewMutex(name, redsync.WithExpiry(10*time.Second))
			if err := m.LockContext(ctx); err != nil {
				return err
			}
			_, err := m.UnlockContext(ctx)
			return err
		})
	})
}

// BenchmarkRedisLockCycle: one Redis.
func BenchmarkRedisLockCycle(b *testing.B) {
	masters, cmds := clients(b, stack.Redis, []string{stack.RedisAddr()})
	redlockContenders(b, masters, cmds)
	rl, name := redislock.New(masters[0]), key(b)
	b.Run("impl=redislock", func(b *testing.B) {
		cycle(b, cmds, func(ctx context.Context) error {
			l, err := rl.Obtain(ctx, name, 10*time.Second, nil)
			if err != nil {
				return err
			}
			return l.Release(ctx)
		})
	})
}

// BenchmarkRedisFencingToken isolates what the fencing token costs
// lock.Redlock on one Redis: a lock cycle made of the scripts it runs (lock,
// then release), with the counter's INCR inside the lock script (impl=ours)
// and without it (impl=no-token). Same round trips either way; the
// difference is the INCR's work in Redis and the longer reply.
func BenchmarkRedisFencingToken(b *testing.B) {
	masters, cmds := clients(b, stack.Redis, []string{stack.RedisAddr()})
	name := key(b)
	release := redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
	for _, c := range []struct {
		impl string
		lock *redis.Script
	}{
		{"ours", redis.NewScript(`if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return {1, redis.call("INCR", KEYS[2])} end return {0, tonumber(redis.call("GET", KEYS[2]) or "0")}`)},
		{"no-token", redis.NewScript(`if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return {1, 0} end return {0, 0}`)},
	} {
		b.Run("impl="+c.impl, func(b *testing.B) {
			cycle(b, cmds, func(ctx context.Context) error {
				v, err := c.lock.Run(ctx, masters[0], []string{name + ":lock", name + ":fence"}, "value", 10000).Int64Slice()
				if err != nil {
					return err
				}
				if v[0] != 1 {
					return fmt.Errorf("not locked: %v", v)
				}
				return release.Run(ctx, masters[0], []string{name + ":lock"}, "value").Err()
			})
		})
	}
}

// BenchmarkRedlockCycle: the three Redlock masters.
func BenchmarkRedlockCycle(b *testing.B) {
	masters, cmds := clients(b, stack.Redlock, stack.RedlockAddrs())
	redlockContenders(b, masters, cmds)
}

// BenchmarkEtcdLockCycle: the stack's etcd.
func BenchmarkEtcdLockCycle(b *testing.B) {
	c, ours, pfx := etcdLocker(b)
	b.Run("impl=ours", func(b *testing.B) {
		cycle(b, nil, func(ctx context.Context) error { return ours.ExecuteWithLock(ctx, "r", 10*time.Second, noop) })
	})
	b.Run("impl=etcd-mutex-session-per-lock", func(b *testing.B) {
		cycle(b, nil, func(ctx context.Context) error {
			s, err := concurrency.NewSession(c, concurrency.WithTTL(10), concurrency.WithContext(ctx))
			if err != nil {
				return err
			}
			defer s.Close()
			m := concurrency.NewMutex(s, pfx+"per-lock")
			if err := m.Lock(ctx); err != nil {
				return err
			}
			return m.Unlock(ctx)
		})
	})
	s, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.Run("impl=etcd-mutex-shared-session", func(b *testing.B) {
		m := concurrency.NewMutex(s, pfx+"shared")
		cycle(b, nil, func(ctx context.Context) error {
			if err := m.Lock(ctx); err != nil {
				return err
			}
			return m.Unlock(ctx)
		})
	})
}

// BenchmarkLockCyclePaired runs the contenders of each backend in turns: a
// turn is turnCycles lock cycles of one contender, and an op is 10 rounds in
// which every contender takes a turn, the order rotating from round to round.
// On a machine whose load changes from second to second, separate runs of
// each contender (the benchmarks above) compare different loads; turns a few
// milliseconds apart compare the same. It reports each contender's time per
// cycle over its own turns (NAME-ns/cycle) and its throughput as a multiple
// of ours (NAME-x-ours: 0.80 means 80 % of ours, 1.25 that ours takes 1.25×
// its time).
func BenchmarkLockCyclePaired(b *testing.B) {
	type contender struct {
		name string
		f    func(ctx context.Context) error
	}
	run := func(b *testing.B, turnCycles int, cs []contender) {
		ctx := b.Context()
		for _, c := range cs { // warm up: scripts loaded, connections open, leases granted
			for range turnCycles {
				if err := c.f(ctx); err != nil {
					b.Fatal(c.name, err)
				}
			}
		}
		took := make([]time.Duration, len(cs))
		const rounds = 10
		b.ResetTimer()
		for b.Loop() {
			for r := range rounds {
				for j := range cs {
					k := (r + j) % len(cs)
					start := time.Now()
					for range turnCycles {
						if err := cs[k].f(ctx); err != nil {
							b.Fatal(cs[k].name, err)
						}
					}
					took[k] += time.Since(start)
				}
			}
		}
		cycles := float64(b.N * rounds * turnCycles)
		for k, c := range cs {
			b.ReportMetric(float64(took[k].Nanoseconds())/cycles, c.name+"-ns/cycle")
			if k > 0 {
				b.ReportMetric(took[0].Seconds()/took[k].Seconds(), c.name+"-x-ours")
			}
		}
	}
	redsyncCycle := func(masters []redis.UniversalClient) func(ctx context.Context) error {
		var pools []rsredis.Pool
		for _, m := range masters {
			pools = append(pools, goredis.NewPool(m))
		}
		rs, name := redsync.New(pools...), key(b)
		return func(ctx context.Context) error {
			m := rs.NewMutex(name, redsync.WithExpiry(10*time.Second))
			if err := m.LockContext(ctx); err != nil {
				return err
			}
			_, err := m.UnlockContext(ctx)
			return err
		}
	}
	oursCycle := func(masters []redis.UniversalClient) func(ctx context.Context) error {
		ours, err := lock.NewRedlock(masters, lock.RedlockConfig{Prefix: key(b) + ":"})
		if err != nil {
			b.Fatal(err)
		}
		return func(ctx context.Context) error { return ours.ExecuteWithLock(ctx, "r", 10*time.Second, noop) }
	}
	b.Run("backend=redis", func(b *testing.B) {
		masters, _ := clients(b, stack.Redis, []string{stack.RedisAddr()})
		rl, name := redislock.New(masters[0]), key(b)
		run(b, 50, []contender{
			{"ours", oursCycle(masters)},
			{"redsync", redsyncCycle(masters)},
			{"redislock", func(ctx context.Context) error {
				l, err := rl.Obtain(ctx, name, 10*time.Second, nil)
				if err != nil {
					return err
				}
				return l.Release(ctx)
			}},
		})
	})
	b.Run("backend=redlock", func(b *testing.B) {
		masters, _ := clients(b, stack.Redlock, stack.RedlockAddrs())
		run(b, 20, []contender{{"ours", oursCycle(masters)}, {"redsync", redsyncCycle(masters)}})
	})
	b.Run("backend=etcd", func(b *testing.B) {
		c, ours, pfx := etcdLocker(b)
		s, err := concurrency.NewSession(c, concurrency.WithTTL(10))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		m := concurrency.NewMutex(s, pfx+"shared")
		run(b, 5, []contender{
			{"ours", func(ctx context.Context) error { return ours.ExecuteWithLock(ctx, "r", 10*time.Second, noop) }},
			{"etcd-mutex-shared-session", func(ctx context.Context) error {
				if err := m.Lock(ctx); err != nil {
					return err
				}
				return m.Unlock(ctx)
			}},
		})
	})
}

// etcdLocker connects to the stack's etcd (skipping without it) and returns
// the client, our locker on a fresh prefix, and the prefix; both close when
// b ends.
func etcdLocker(b *testing.B) (*clientv3.Client, *lock.Etcd, string) {
	b.Helper()
	if err := stack.Reachable(stack.Etcd, time.Second); err != nil {
		b.Skip("needs the stack's etcd: ", err)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: stack.EtcdEndpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	pfx := "/" + key(b) + "/"
	ours, err := lock.NewEtcd(c, lock.EtcdConfig{Prefix: pfx})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ours.Close() })
	return c, ours, pfx
}
