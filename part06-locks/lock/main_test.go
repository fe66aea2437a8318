package lock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part06-locks/internal/services"
)

// embedded is the embedded etcd server the unit tests share, started by the
// first test that asks for it (about half a second) and stopped by TestMain.
// A run that does not need it (the fault tests, which use the stack's etcd)
// never starts it.
var embedded struct {
	once     sync.Once
	endpoint string
	err      error
	stop     func()
	dir      string
}

// etcdEndpoint starts the shared embedded server on first use.
func etcdEndpoint(t testing.TB) string {
	t.Helper()
	embedded.once.Do(func() {
		embedded.dir, embedded.err = os.MkdirTemp("", "lock-test-etcd-")
		if embedded.err == nil {
			embedded.endpoint, embedded.stop, embedded.err = services.StartEtcd(embedded.dir)
		}
	})
	require.NoError(t, embedded.err, "the embedded etcd server")
	return embedded.endpoint
}

func TestMain(m *testing.M) {
	if code, ok := childMain(); ok { // a child process of a cross-process test
		os.Exit(code)
	}
	redis.SetLogger(quiet{}) // go-redis logs refused dials and cancelled reads: the tests cause both on purpose
	code := m.Run()
	if embedded.stop != nil {
		embedded.stop()
	}
	if embedded.dir != "" {
		_ = os.RemoveAll(embedded.dir)
	}
	if code == 0 {
		// The embedded server's own goroutines are gone after stop; what is
		// left would be this package's (or its clients') leaks.
		if err := leakcheck.Find(leakcheck.Settle, goleakOptions...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// goleakOptions ignores goroutines that outlive their owner by design:
// go-redis's and grpc's process-wide background workers.
var goleakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
}

// master is one miniredis Redlock master in a test, reachable over in-memory
// pipes (usable inside a synctest bubble), with a client that honours context
// deadlines. Down makes new connections fail and Crash closes the open ones;
// Gate freezes this client's traffic.
type master struct {
	mr     *miniredis.Miniredis
	client *redis.Client
	down   atomic.Bool
	gate   *services.Gate
}

// crash takes the master down: open connections break, new ones are refused.
func (m *master) crash() {
	m.down.Store(true)
	m.mr.Close()
}

func newMasters(t testing.TB, n int) ([]*master, []redis.UniversalClient) {
	t.Helper()
	var ms []*master
	var clients []redis.UniversalClient
	for range n {
		m := &master{mr: miniredis.NewMiniRedis(), gate: services.NewGate()}
		m.mr.ClockTTL(true)
		m.client = redis.NewClient(&redis.Options{
			Addr: "127.0.0.1:6379", // never dialled; an IP literal keeps NewClient from resolving a name
			Dialer: func(context.Context, string, string) (net.Conn, error) {
				if m.down.Load() {
					return nil, errors.New("connection refused (test master down)")
				}
				c, err := m.mr.Dial()
				if err != nil {
					return nil, err
				}
				return m.gate.Wrap(c), nil
			},
			// Enough connections that no caller waits for one: go-redis's pool-wait
			// path reuses timers through a sync.Pool, which a synctest bubble rejects.
			PoolSize: 256, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true,
		})
		t.Cleanup(func() { m.gate.Thaw(); _ = m.client.Close(); m.mr.Close() })
		ms, clients = append(ms, m), append(clients, m.client)
	}
	return ms, clients
}

// masters is newMasters for tests that only need the servers and clients.
func masters(t testing.TB, n int) ([]*miniredis.Miniredis, []redis.UniversalClient) {
	t.Helper()
	ms, clients := newMasters(t, n)
	mrs := make([]*miniredis.Miniredis, n)
	for i, m := range ms {
		mrs[i] = m.mr
	}
	return mrs, clients
}

// etcdClient connects to the package's embedded etcd server.
func etcdClient(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdEndpoint(t)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniqueName returns a resource name no other test uses.
func uniqueName(t testing.TB) string {
	return fmt.Sprintf("test-%d-%d", time.Now().UnixNano(), seq.Add(1))
}

var seq atomic.Int64

// section checks mutual exclusion from inside a critical section: enter
// reports how many holders are inside, counting itself.
type section struct{ inside, overlaps atomic.Int64 }

func (s *section) enter() {
	if s.inside.Add(1) != 1 {
		s.overlaps.Add(1)
	}
}

func (s *section) leave() { s.inside.Add(-1) }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// mutualExclusion has goroutines contend for one lock, cycles times each.
// Inside the section a counter of holders must read 1, and the tokens,
// recorded in the order the holders entered, must strictly increase.
func mutualExclusion(t *testing.T, l Locker, resource string, ttl time.Duration, goroutines, cycles int) {
	t.Helper()
	var (
		s      section
		mu     sync.Mutex
		tokens []int64
		wg     sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			for range cycles {
				err := l.ExecuteWithLock(t.Context(), resource, ttl, func(ctx context.Context, token int64) error {
					s.enter()
					defer s.leave()
					mu.Lock()
					tokens = append(tokens, token)
					mu.Unlock()
					time.Sleep(time.Millisecond) // a section that takes time: others must wait, not enter
					return nil
				})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	assert.Zero(t, s.overlaps.Load(), "overlapping critical sections")
	require.Len(t, tokens, goroutines*cycles)
	for i := 1; i < len(tokens); i++ {
		require.Greater(t, tokens[i], tokens[i-1], "token of holder %d", i)
	}
}
