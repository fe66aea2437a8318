package lock

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/sysdesign-masterclass/golang/part06-locks/internal/services"
)

func newEtcd(t testing.TB, c *clientv3.Client) *Etcd {
	t.Helper()
	e, err := NewEtcd(c, EtcdConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// The token is the lock key's create revision, and it increases.
func TestEtcdTokenIsTheLockKeysCreateRevision(t *testing.T) {
	c := etcdClient(t)
	e := newEtcd(t, c)
	res := uniqueName(t)
	var last int64
	for range 3 {
		require.NoError(t, e.ExecuteWithLock(t.Context(), res, time.Second, func(ctx context.Context, token int64) error {
			resp, err := c.Get(ctx, "/locks/"+res+"/", clientv3.WithPrefix())
			require.NoError(t, err)
			require.Len(t, resp.Kvs, 1, "one holder, no waiters")
			assert.Equal(t, resp.Kvs[0].CreateRevision, token)
			assert.Greater(t, token, last)
			last = token
			return nil
		}))
	}
	resp, err := c.Get(t.Context(), "/locks/"+res+"/", clientv3.WithPrefix())
	require.NoError(t, err)
	assert.Empty(t, resp.Kvs, "the release deleted the lock key")
}

// Released lock keys' names are reused: a fresh name per lock would leave a
// deleted key per cycle in etcd's index, for the first-created lookup to walk
// until the next compaction. Two holders at once still get two names.
func TestEtcdReusesReleasedKeyNames(t *testing.T) {
	c := etcdClient(t)
	e := newEtcd(t, c)
	a, b := uniqueName(t), uniqueName(t)
	keys := map[string]bool{}
	held := func(ctx context.Context, res string) string {
		resp, err := c.Get(ctx, "/locks/"+res+"/", clientv3.WithPrefix())
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1)
		return strings.TrimPrefix(string(resp.Kvs[0].Key), "/locks/"+res+"/")
	}
	for range 5 {
		require.NoError(t, e.ExecuteWithLock(t.Context(), a, time.Second, func(ctx context.Context, _ int64) error {
			keys[held(ctx, a)] = true
			return e.ExecuteWithLock(ctx, b, time.Second, func(ctx context.Context, _ int64) error {
				keys[held(ctx, b)] = true
				return nil
			})
		}))
	}
	assert.Len(t, keys, 2, "one name per lock held at once, not one per cycle: %v", keys)
}

func TestEtcdMutualExclusion(t *testing.T) {
	mutualExclusion(t, newEtcd(t, etcdClient(t)), uniqueName(t), 5*time.Second, 6, 15)
}

// leaseOf returns the granted TTL of the lease behind the only lock key of res.
func leaseOf(t *testing.T, ctx context.Context, c *clientv3.Client, res string) int64 {
	t.Helper()
	resp, err := c.Get(ctx, "/locks/"+res+"/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	ttl, err := c.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)
	return ttl.GrantedTTL
}

// TTLs become whole seconds, rounded up, and the server raises anything under
// its minimum (1.5 × the 1 s election timeout, rounded up: 2 s).
func TestEtcdLeaseTTL(t *testing.T) {
	c := etcdClient(t)
	e := newEtcd(t, c)
	for _, tt := range []struct {
		ttl     time.Duration
		granted int64
	}{
		{time.Second, 2},             // asked 1, the server's minimum is 2
		{1500 * time.Millisecond, 2}, // rounded up to 2
		{2001 * time.Millisecond, 3}, // rounded up to 3, not down to 2
		{10 * time.Second, 10},
	} {
		res := uniqueName(t)
		require.NoError(t, e.ExecuteWithLock(t.Context(), res, tt.ttl, func(ctx context.Context, _ int64) error {
			assert.Equal(t, tt.granted, leaseOf(t, ctx, c, res), "ttl %v", tt.ttl)
			return nil
		}))
	}
}

// The article's etcd lock with the PayPay TTL: int((500 ms).Seconds()) is 0,
// and concurrency.WithTTL(0) keeps the session's 60 s default. A holder that
// dies blocks everyone for a minute, not half a second.
func TestArticleSubSecondTTLIsSixtySeconds(t *testing.T) {
	c := etcdClient(t)
	ttl := 500 * time.Millisecond
	s, err := concurrency.NewSession(c, concurrency.WithTTL(int(ttl.Seconds())), concurrency.WithContext(t.Context()))
	require.NoError(t, err)
	defer s.Close()
	resp, err := c.TimeToLive(t.Context(), s.Lease())
	require.NoError(t, err)
	assert.Equal(t, int64(60), resp.GrantedTTL)
	g, err := c.Grant(t.Context(), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(2), g.TTL, "the server's minimum lease TTL")
	_, err = c.Revoke(t.Context(), g.ID)
	require.NoError(t, err)
}

// The article names the lock /locks/<key>; etcd's mutex waits on the prefix
// "/locks/<key>/", so the lock on "orders" waits for the holder of "orders/42".
func TestArticleNestedNamesBlockEachOther(t *testing.T) {
	c := etcdClient(t)
	base := "/" + uniqueName(t)
	s1, err := concurrency.NewSession(c, concurrency.WithTTL(5))
	require.NoError(t, err)
	defer s1.Close()
	s2, err := concurrency.NewSession(c, concurrency.WithTTL(5))
	require.NoError(t, err)
	defer s2.Close()
	item := concurrency.NewMutex(s1, base+"/locks/orders/42")
	require.NoError(t, item.Lock(t.Context()))
	all := concurrency.NewMutex(s2, base+"/locks/orders")
	assert.ErrorIs(t, all.TryLock(t.Context()), concurrency.ErrLocked, `"orders" is held by the holder of "orders/42"`)
	require.NoError(t, item.Unlock(t.Context()))
	require.NoError(t, all.TryLock(t.Context()))
	require.NoError(t, all.Unlock(t.Context()))
}

func TestEtcdLossIsReported(t *testing.T) {
	t.Run("lease revoked", func(t *testing.T) {
		c := etcdClient(t)
		e := newEtcd(t, c)
		res := uniqueName(t)
		err := e.ExecuteWithLock(t.Context(), res, 5*time.Second, func(ctx context.Context, _ int64) error {
			resp, err := c.Get(ctx, "/locks/"+res+"/", clientv3.WithPrefix())
			require.NoError(t, err)
			_, err = c.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)) // what the leader does when the lease expires
			require.NoError(t, err)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				require.FailNow(t, "no loss reported 10 s after the lease was revoked")
			}
			assert.ErrorIs(t, context.Cause(ctx), ErrLockLost)
			return nil
		})
		require.ErrorIs(t, err, ErrLockLost)
	})

	// The holder's connection freezes (a partition, or from the server's side a
	// process stopped by SIGSTOP). Its context is cancelled before the leader
	// expires the lease, so before a second holder can take the lock.
	t.Run("holder cut off", func(t *testing.T) {
		gate := services.NewGate()
		cut, err := clientv3.New(clientv3.Config{
			Endpoints: []string{etcdEndpoint(t)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return gate.DialContext(ctx, "tcp", addr)
			})},
		})
		require.NoError(t, err)
		defer cut.Close()
		defer gate.Thaw() // before Close, which would wait for the frozen connection
		a, b := newEtcd(t, cut), newEtcd(t, etcdClient(t))
		res := uniqueName(t)
		acquired := make(chan time.Time, 1)
		var frozenAt, cancelledAt time.Time
		err = a.ExecuteWithLock(t.Context(), res, 2*time.Second, func(ctx context.Context, _ int64) error {
			gate.Freeze()
			frozenAt = time.Now()
			go func() {
				assert.NoError(t, b.ExecuteWithLock(t.Context(), res, 2*time.Second, func(context.Context, int64) error {
					acquired <- time.Now()
					return nil
				}))
			}()
			select {
			case <-ctx.Done():
				cancelledAt = time.Now()
			case <-time.After(10 * time.Second):
				require.FailNow(t, "no loss reported 10 s after the holder was cut off")
			}
			return nil
		})
		t.Logf("ExecuteWithLock returned %v after the cut", time.Since(frozenAt))
		require.ErrorIs(t, err, ErrLockLost)
		assert.ErrorContains(t, err, "validity ended")
		assert.Less(t, cancelledAt.Sub(frozenAt), 2*time.Second, "within the lease TTL")
		select {
		case at := <-acquired:
			assert.True(t, cancelledAt.Before(at), "A stopped (%v) before B started (%v)", cancelledAt.Sub(frozenAt), at.Sub(frozenAt))
			t.Logf("A cut off at 0; A's context cancelled at %v; B acquired at %v", cancelledAt.Sub(frozenAt), at.Sub(frozenAt))
		case <-time.After(15 * time.Second):
			require.FailNow(t, "B never got the lock")
		}
	})
}

// A caller that gives up while fn is still inside its critical section does
// not end the lock under fn: the lease is renewed until fn returns, nobody
// else gets the lock, and no loss is reported. (Renewal used to stop with the
// caller's context: the session kept the lease, but the validity deadline
// ran out and ExecuteWithLock reported a false "lock lost".)
func TestEtcdKeepsTheLockUntilFnReturnsAfterTheCallerGaveUp(t *testing.T) {
	e, other := newEtcd(t, etcdClient(t)), newEtcd(t, etcdClient(t))
	res := uniqueName(t)
	ctx, cancel := context.WithCancel(t.Context())
	err := e.ExecuteWithLock(ctx, res, 2*time.Second, func(ctx context.Context, _ int64) error {
		cancel()
		for end := time.Now().Add(4 * time.Second); time.Now().Before(end); { // past the lease TTL
			wctx, wcancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			err := other.ExecuteWithLock(wctx, res, 2*time.Second, func(context.Context, int64) error {
				t.Error("a second holder while the first is still inside")
				return nil
			})
			wcancel()
			assert.ErrorIs(t, err, ErrNotAcquired)
		}
		assert.Equal(t, context.Canceled, context.Cause(ctx), "fn sees the caller's cancellation, not a loss")
		return nil
	})
	assert.NoError(t, err)
}

// A waiter that gives up returns ErrNotAcquired and leaves no key behind; a
// holder whose caller gave up still releases at once.
func TestEtcdCancelledCallers(t *testing.T) {
	c := etcdClient(t)
	e := newEtcd(t, c)
	res := uniqueName(t)
	keys := func() int {
		resp, err := c.Get(t.Context(), "/locks/"+res+"/", clientv3.WithPrefix())
		require.NoError(t, err)
		return len(resp.Kvs)
	}
	ctx, cancel := context.WithCancel(t.Context())
	err := e.ExecuteWithLock(ctx, res, 5*time.Second, func(ctx context.Context, _ int64) error {
		wctx, wcancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer wcancel()
		err := e.ExecuteWithLock(wctx, res, 5*time.Second, func(context.Context, int64) error {
			t.Error("a second holder")
			return nil
		})
		assert.ErrorIs(t, err, ErrNotAcquired)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 1, keys(), "the waiter removed its key")
		cancel()
		return ctx.Err()
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, keys(), "released although the caller gave up")
}

// A waiter whose lock request is still on its way when the caller gives up:
// acquire's put lands after the release's delete (an interceptor holds the
// request until then; a cancelled RPC may be proposed by the server in any
// order with the delete). The key is under the process's shared lease, which
// is kept alive until Close: left there, it blocks the resource for as long
// as the process lives. The abandoned put must not land.
func TestEtcdPutLandingAfterTheWaiterGaveUp(t *testing.T) {
	var armed atomic.Bool
	armed.Store(true)
	deleted, landed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ctx, giveUp := context.WithCancel(t.Context())
	defer giveUp()
	intercept := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		switch {
		case method == "/etcdserverpb.KV/Txn" && armed.CompareAndSwap(true, false):
			go func() { // the request, delayed past the caller's give-up and the release
				defer close(landed)
				<-deleted
				_ = invoker(context.Background(), method, req, new(etcdserverpb.TxnResponse), cc, opts...)
			}()
			giveUp() // the caller gives up while its request is on its way
			<-ctx.Done()
			return ctx.Err()
		case method == "/etcdserverpb.KV/DeleteRange" || method == "/etcdserverpb.KV/Txn":
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil {
				once.Do(func() { close(deleted) })
			}
			return err
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints: []string{etcdEndpoint(t)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(intercept)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	a, b := newEtcd(t, c), newEtcd(t, etcdClient(t))
	res := uniqueName(t)

	err = a.ExecuteWithLock(ctx, res, 10*time.Second, func(context.Context, int64) error {
		t.Error("fn ran without the lock")
		return nil
	})
	require.ErrorIs(t, err, ErrNotAcquired)
	assert.ErrorIs(t, err, context.Canceled)
	select {
	case <-landed:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the delayed request was never sent")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ran := false
	err = b.ExecuteWithLock(ctx, res, 10*time.Second, func(context.Context, int64) error {
		ran = true
		return nil
	})
	require.NoError(t, err, "the abandoned request left a key under a live lease: the resource is blocked until a.Close")
	assert.True(t, ran)
}

// A waiter's watch is cut (its connection closed, the redial held) while the
// key ahead is deleted and the history compacted: the client resumes the
// watch from a compacted revision and etcd cancels it (ErrCompacted). The
// waiter keeps its place: it lists the keys ahead again and watches anew,
// and gets the lock, which is free, instead of failing.
func TestEtcdWaiterSurvivesACompactedWatch(t *testing.T) {
	var (
		mu    sync.Mutex
		conns []net.Conn
		hold  = make(chan struct{})
	)
	close(hold)
	cut := func() { // close every connection and hold the redials
		mu.Lock()
		defer mu.Unlock()
		hold = make(chan struct{})
		for _, c := range conns {
			_ = c.Close()
		}
	}
	reopen := func() {
		mu.Lock()
		defer mu.Unlock()
		close(hold)
	}
	watching := make(chan struct{})
	var watchOnce sync.Once
	ca, err := clientv3.New(clientv3.Config{
		Endpoints: []string{etcdEndpoint(t)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if r, ok := req.(*etcdserverpb.RangeRequest); ok && err == nil && r.MaxCreateRevision > 0 {
				watchOnce.Do(func() { close(watching) }) // the waiter has listed the keys ahead: it waits on its watch
			}
			return err
		}), grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			mu.Lock()
			h := hold
			mu.Unlock()
			select {
			case <-h:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
			return c, err
		})},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ca.Close() })
	cb := etcdClient(t)
	a, b := newEtcd(t, ca), newEtcd(t, cb)
	res := uniqueName(t)
	keys := func() int {
		resp, err := cb.Get(t.Context(), "/locks/"+res+"/", clientv3.WithPrefix())
		require.NoError(t, err)
		return len(resp.Kvs)
	}

	held, release := make(chan struct{}), make(chan struct{})
	holderDone := make(chan error, 1)
	go func() {
		holderDone <- b.ExecuteWithLock(t.Context(), res, 10*time.Second, func(context.Context, int64) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	waiterDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		waiterDone <- a.ExecuteWithLock(ctx, res, 10*time.Second, func(context.Context, int64) error { return nil })
	}()
	select {
	case <-watching:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the waiter never listed the keys ahead")
	}
	require.Eventually(t, func() bool { return keys() == 2 }, 10*time.Second, 10*time.Millisecond, "the waiter's key")

	cut()
	close(release)
	require.NoError(t, <-holderDone)
	put, err := cb.Put(t.Context(), "/"+res+"-history", "x")
	require.NoError(t, err)
	_, err = cb.Compact(t.Context(), put.Header.Revision)
	require.NoError(t, err)
	reopen()

	select {
	case err := <-waiterDone:
		assert.NoError(t, err, "the lock was free: the waiter must get it")
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the waiter never returned")
	}
}

// A waiter that waits three times its lease's TTL keeps its place: the
// session keeps the shared lease alive while it waits, so its key is still
// there, and it gets the lock when the holder releases, with a higher token.
func TestEtcdWaiterOutlastsItsLeaseTTL(t *testing.T) {
	a, b := newEtcd(t, etcdClient(t)), newEtcd(t, etcdClient(t))
	res := uniqueName(t)
	const ttl = 2 * time.Second
	var holder int64
	held, release := make(chan struct{}), make(chan struct{})
	holderDone := make(chan error, 1)
	go func() {
		holderDone <- b.ExecuteWithLock(t.Context(), res, ttl, func(_ context.Context, token int64) error {
			holder = token
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	waiterDone := make(chan error, 1)
	var waiter int64
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		waiterDone <- a.ExecuteWithLock(ctx, res, ttl, func(_ context.Context, token int64) error {
			waiter = token
			return nil
		})
	}()
	time.Sleep(3 * ttl) // the waiter waits past its lease's TTL
	close(release)
	require.NoError(t, <-holderDone)
	select {
	case err := <-waiterDone:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the waiter never returned")
	}
	assert.Greater(t, waiter, holder)
}
