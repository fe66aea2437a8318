package tiered

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// product stands for any value a service caches.
type product struct {
	ID    string `json:"id"`
	Price int64  `json:"price"`
}

// source is a system of record that counts loads.
type source struct {
	mu    sync.Mutex
	m     map[string]product
	loads atomic.Int64
}

func newSource(ps ...product) *source {
	s := &source{m: map[string]product{}}
	for _, p := range ps {
		s.m[p.ID] = p
	}
	return s
}

func (s *source) load(_ context.Context, key string) (product, error) {
	s.loads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[key]
	if !ok {
		return product{}, errors.New("not found")
	}
	return p, nil
}

var waitFor = fixture.WaitFor

// memRedis is miniredis served over in-memory pipes: no port, so tests can run
// inside a testing/synctest bubble, where TTLs (ClockTTL) and every timer follow the
// bubble's fake clock. kill makes it unreachable, restart brings it back.
type memRedis struct {
	t    testing.TB
	mr   *miniredis.Miniredis
	down atomic.Bool
}

var errRefused = errors.New("memRedis: connection refused")

func newMemRedis(t testing.TB) *memRedis {
	m := &memRedis{t: t, mr: miniredis.NewMiniRedis()}
	m.mr.ClockTTL(true)
	t.Cleanup(m.mr.Close)
	return m
}

// client returns a client of m. With hole set, its connections turn into black holes
// while *hole is true: writes vanish, nothing is ever read, nothing is closed. That
// is how a network partition or a dropped NAT entry looks to a TCP client.
func (m *memRedis) client(hole *atomic.Bool) *redis.Client {
	rdb := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:6379", // never dialled; an IP literal keeps NewClient from resolving a host name
		// Enough connections that no caller waits for one: go-redis's pool-wait path
		// reuses timers across tests through a sync.Pool, which a synctest bubble rejects.
		PoolSize: 256,
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			if m.down.Load() {
				return nil, errRefused
			}
			c, err := m.mr.Dial()
			if err != nil || hole == nil {
				return c, err
			}
			return blackholeConn{c, hole}, nil
		},
	})
	m.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// kill closes every connection and refuses new ones; restart accepts them again
// (miniredis keeps its data).
func (m *memRedis) kill()    { m.down.Store(true); m.mr.Close() }
func (m *memRedis) restart() { m.down.Store(false) }

type blackholeConn struct {
	net.Conn
	on *atomic.Bool
}

func (c blackholeConn) Write(p []byte) (int, error) {
	if c.on.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Read drops whatever arrives while the hole is on, and returns only on an error
// (the read deadline, or Close).
func (c blackholeConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err != nil || !c.on.Load() {
			return n, err
		}
	}
}

// subClient subscribes on a separate client, so a test can break an instance's
// subscription while its reads and writes keep working.
type subClient struct {
	*redis.Client
	sub *redis.Client
}

func (s subClient) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return s.sub.Subscribe(ctx, channels...)
}

func newCache(t testing.TB, rdb redis.UniversalClient, prefix string, load func(context.Context, string) (product, error), opts ...func(*Options[product])) *Cache[product] {
	t.Helper()
	o := Options[product]{
		Redis: rdb, Prefix: prefix, Load: load,
		L1: LocalOptions{TTL: time.Hour}, // so only an invalidation can make an instance see a write
	}
	for _, f := range opts {
		f(&o)
	}
	c, err := New(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
