package tiered

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestCacheFillDoesNotOverwriteAConcurrentSet: a fill that loaded the old value from
// the system of record must not replace in L2 a value another instance Set while the
// load ran; otherwise every instance serves the old value for L2TTL.
func TestCacheFillDoesNotOverwriteAConcurrentSet(t *testing.T) {
	_, rdb := miniClient(t)
	ctx := context.Background()
	loading, release := make(chan struct{}), make(chan struct{})
	a := newCache(t, rdb, "part03:unit:", func(context.Context, string) (product, error) {
		close(loading)
		<-release
		return product{"p1", 100}, nil // read before the write below committed
	})
	b := newCache(t, rdb, "part03:unit:", (&source{}).load)

	done := make(chan error, 1)
	go func() { _, err := a.Get(ctx, "p1"); done <- err }()
	<-loading
	if err := b.Set(ctx, "p1", product{"p1", 90}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's own invalidation", func() bool { return b.Stats().Invalidations >= 1 })
	if p, err := b.Get(ctx, "p1"); err != nil || p.Price != 90 {
		t.Fatalf("after Set(90) and a concurrent fill: %+v, %v; want 90 (the fill clobbered the write in L2)", p, err)
	}
}

// gatedConn delays reads while its gate is shut.
type gatedConn struct {
	net.Conn
	gate *gate
}

func (c gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.gate.wait() // hold what arrived until the gate opens
	return n, err
}

// gate starts open; shut makes wait block until open is called.
type gate struct {
	mu     sync.Mutex
	opened chan struct{}
}

func newGate() *gate {
	g := &gate{opened: make(chan struct{})}
	close(g.opened)
	return g
}

func (g *gate) shut() { g.mu.Lock(); g.opened = make(chan struct{}); g.mu.Unlock() }
func (g *gate) open() { g.mu.Lock(); close(g.opened); g.mu.Unlock() }
func (g *gate) wait() { g.mu.Lock(); ch := g.opened; g.mu.Unlock(); <-ch }

// subClient subscribes on a separate client, so a test can hold back the delivery of
// invalidation messages.
type subClient struct {
	*redis.Client
	sub *redis.Client
}

func (s subClient) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return s.sub.Subscribe(ctx, channels...)
}

// TestCacheReadsItsOwnWrite: after Set returns, this instance must serve the new value
// even if its subscription has not delivered the invalidation yet, including when a
// fill on this instance read L2 while the write was on its way.
func TestCacheReadsItsOwnWrite(t *testing.T) {
	mr, rdb := miniClient(t)
	gate := newGate()
	sub := redis.NewClient(&redis.Options{Addr: mr.Addr(), Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return gatedConn{c, gate}, nil
	}})
	t.Cleanup(func() { _ = sub.Close() })
	ctx := context.Background()
	src := &source{m: map[string]product{"p1": {"p1", 100}}}
	c := newCache(t, subClient{rdb, sub}, "part03:unit:", src.load)
	if _, err := c.Get(ctx, "p1"); err != nil {
		t.Fatal(err)
	}

	// Right before the write reaches Redis, another request on this instance fills L1
	// from L2, which still holds the old value.
	var once sync.Once
	rdb.AddHook(hook{pipe: func(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
		return func(ctx context.Context, cmds []redis.Cmder) error {
			once.Do(func() {
				if _, err := c.Get(ctx, "p1"); err != nil {
					t.Error(err)
				}
			})
			return next(ctx, cmds)
		}
	}})
	gate.shut() // the invalidation message is in flight, not yet delivered
	err := c.Set(ctx, "p1", product{"p1", 90})
	p, gerr := c.Get(ctx, "p1")
	gate.open()
	if err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if p.Price != 90 {
		t.Fatalf("Get right after Set(90) on the same instance = %+v, want 90", p)
	}
}

type hook struct {
	pipe func(redis.ProcessPipelineHook) redis.ProcessPipelineHook
}

func (hook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return h.pipe(next)
}
