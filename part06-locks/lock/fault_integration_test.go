//go:build integration

package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part06-locks/fencing"
)

// redlockOnStack is a Redlock on the stack's three masters with few tries,
// so a test that expects a failure gets it quickly.
func redlockOnStack(t *testing.T, tries int) *Redlock {
	t.Helper()
	var clients []redis.UniversalClient
	for _, a := range stack.RedlockAddrs() {
		c := redis.NewClient(&redis.Options{
			Addr: a, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true,
			DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		})
		t.Cleanup(func() { _ = c.Close() })
		clients = append(clients, c)
	}
	return newRedlock(t, clients, RedlockConfig{Prefix: "part06:test:", Tries: tries})
}

// TestFaultRedlockMastersKilled: one master of three killed, the lock still
// works (quorum 2); two killed, it fails with ErrUnavailable and fn never
// runs; both back (empty: the stack's Redis keeps no data), it works again
// and the tokens keep increasing.
func TestFaultRedlockMastersKilled(t *testing.T) {
	stack.Require(t, stack.Redlock)
	r := redlockOnStack(t, 3)
	resource := fmt.Sprintf("fault-kill-%d", time.Now().UnixNano())
	var last int64
	lockOnce := func() error {
		return r.ExecuteWithLock(t.Context(), resource, 2*time.Second, func(_ context.Context, token int64) error {
			assert.Greater(t, token, last, "tokens increase")
			last = token
			return nil
		})
	}
	require.NoError(t, lockOnce())

	stack.Kill(t, "redlock-2")
	require.NoError(t, lockOnce(), "2 of 3 masters are a quorum")

	stack.Kill(t, "redlock-3")
	start := time.Now()
	err := r.ExecuteWithLock(t.Context(), resource, 2*time.Second, func(context.Context, int64) error {
		t.Error("fn ran without a quorum")
		return nil
	})
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorContains(t, err, "2 of 3 masters failed, quorum is 2")
	assert.ErrorContains(t, err, "connection refused")
	t.Logf("two masters down: %v after %v", err, time.Since(start).Round(time.Millisecond))

	stack.Restart(t, "redlock-2")
	stack.Restart(t, "redlock-3")
	require.NoError(t, lockOnce(), "back to three")
	require.NoError(t, lockOnce())
}

// TestFaultRedlockMasterPaused: one master of three stops answering (paused:
// its port still accepts connections, nothing replies, as in a long GC pause
// or a frozen VM) while the lock is held. The two others renew the lock
// within a millisecond, so the holder keeps it through several renewals;
// redsync's extend used to wait for the paused master until the validity
// deadline, and the holder lost the lock at its first renewal. A lock taken
// while the master is paused holds the same way.
func TestFaultRedlockMasterPaused(t *testing.T) {
	stack.Require(t, stack.Redlock)
	r := redlockOnStack(t, 3)
	resource := fmt.Sprintf("fault-pause-master-%d", time.Now().UnixNano())
	const ttl = time.Second
	hold := func(ctx context.Context, pause bool) error {
		if pause {
			stack.Pause(t, "redlock-1")
		}
		start := time.Now()
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", time.Since(start).Round(time.Millisecond), context.Cause(ctx))
		case <-time.After(4 * ttl): // about twelve renewals, each with a master that does not answer
			return nil
		}
	}
	require.NoError(t, r.ExecuteWithLock(t.Context(), resource, ttl, func(ctx context.Context, _ int64) error { return hold(ctx, true) }),
		"paused while held: two of three masters renew")
	require.NoError(t, r.ExecuteWithLock(t.Context(), resource, ttl, func(ctx context.Context, _ int64) error { return hold(ctx, false) }),
		"taken while paused")
	stack.Resume(t, "redlock-1")
	require.NoError(t, r.ExecuteWithLock(t.Context(), resource, ttl, func(context.Context, int64) error { return nil }), "back to three")
}

// TestFaultRedlockMastersRestartedEmpty is Redlock's known hole: while A
// holds the lock, two masters crash and come back without their data (the
// stack's Redis keeps none). B then wins the two empty masters and holds the
// lock too. The lock cannot prevent it; the token does: B's token is higher
// (the third master still has the counter), B's write lands, A's is refused,
// and A learns it lost the lock at its next extend.
func TestFaultRedlockMastersRestartedEmpty(t *testing.T) {
	stack.Require(t, stack.Redlock, stack.Postgres)
	pool, store, err := stackFence(t.Context())
	require.NoError(t, err)
	defer pool.Close()
	resource := fmt.Sprintf("fault-empty-%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = store.Delete(context.Background(), resource) })
	a, b := redlockOnStack(t, 3), redlockOnStack(t, 3)
	const ttl = 30 * time.Second // A holds it for the whole test; only the restarts break it

	// A takes a few tokens first, so the counter is ahead of an empty master.
	for range 3 {
		require.NoError(t, a.ExecuteWithLock(t.Context(), resource, ttl, func(context.Context, int64) error { return nil }))
	}
	var tokenA, tokenB int64
	aErr := a.ExecuteWithLock(t.Context(), resource, ttl, func(ctx context.Context, token int64) error {
		tokenA = token
		for _, m := range []string{"redlock-1", "redlock-2"} {
			stack.Kill(t, m)
			stack.Restart(t, m)
		}
		require.NoError(t, b.ExecuteWithLock(t.Context(), resource, ttl, func(_ context.Context, token int64) error {
			tokenB = token
			require.NoError(t, ctx.Err(), "A does not know yet: two holders at once")
			return store.Write(t.Context(), resource, token, "B")
		}), "B gets the lock A still holds")
		err := store.Write(context.WithoutCancel(ctx), resource, token, "A")
		assert.ErrorIs(t, err, fencing.ErrStale, "A's write after B's")
		select {
		case <-ctx.Done():
		case <-time.After(ttl):
			require.FailNow(t, "A never learned it lost the lock")
		}
		assert.ErrorContains(t, context.Cause(ctx), "extend refused")
		return err
	})
	assert.ErrorIs(t, aErr, ErrLockLost)
	assert.Greater(t, tokenB, tokenA, "the third master kept the counter")
	rec, _, err := store.Read(t.Context(), resource)
	require.NoError(t, err)
	assert.Equal(t, fencing.Record{Value: "B", Token: tokenB}, rec)
}

// TestFaultRedlockMastersRestartedEmptyOneAtATime: one master restarts empty
// (the stack's Redis keeps no data) and the next cycle, whose two other
// masters agree, brings it back up to the token; later a second master
// restarts empty while the one that kept the counter is paused, and the
// cycle on the two restarted masters still takes a token above every one
// before, so its write is not refused. Left behind, the first master's
// counter made that cycle's token one already given.
func TestFaultRedlockMastersRestartedEmptyOneAtATime(t *testing.T) {
	stack.Require(t, stack.Redlock, stack.Postgres)
	pool, store, err := stackFence(t.Context())
	require.NoError(t, err)
	defer pool.Close()
	resource := fmt.Sprintf("fault-empty-one-%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = store.Delete(context.Background(), resource) })
	r := redlockOnStack(t, 3)
	var tokens []int64
	cycle := func(what string) {
		require.NoError(t, r.ExecuteWithLock(t.Context(), resource, 2*time.Second, func(_ context.Context, token int64) error {
			tokens = append(tokens, token)
			return store.Write(t.Context(), resource, token, what)
		}), what)
	}
	for range 3 {
		cycle("before")
	}
	stack.Kill(t, "redlock-3")
	stack.Restart(t, "redlock-3")
	cycle("after redlock-3 restarted empty")
	stack.Kill(t, "redlock-2")
	stack.Restart(t, "redlock-2")
	stack.Pause(t, "redlock-1")
	cycle("on the two restarted masters")
	stack.Resume(t, "redlock-1")
	require.Len(t, tokens, 5)
	for i := 1; i < len(tokens); i++ {
		assert.Greater(t, tokens[i], tokens[i-1], "tokens increase: %v", tokens)
	}
	rec, _, err := store.Read(t.Context(), resource)
	require.NoError(t, err)
	assert.Equal(t, fencing.Record{Value: "on the two restarted masters", Token: tokens[4]}, rec)
}

// TestFaultPausedHolder is the article's GC-pause case with a real pause: a
// child process takes the lock, prints its token and is stopped (SIGSTOP)
// before it writes. The lock expires; this test takes it with a higher token
// and writes. The child, resumed (SIGCONT), sends its write with the old
// token: the PostgreSQL row refuses it, and the child's ExecuteWithLock
// reports the loss.
func TestFaultPausedHolder(t *testing.T) {
	stack.Require(t, stack.Redlock, stack.Etcd, stack.Postgres)
	for _, backend := range []string{"redlock", "etcd"} {
		t.Run(backend, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			pool, store, err := stackFence(ctx)
			require.NoError(t, err)
			defer pool.Close()
			resource := fmt.Sprintf("fault-pause-%s-%d", backend, time.Now().UnixNano())
			t.Cleanup(func() { _ = store.Delete(context.Background(), resource) })
			const ttl = 2 * time.Second

			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=holder", childBackend+"="+backend, childResource+"="+resource, childTTL+"="+ttl.String())
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGCONT); _ = cmd.Process.Kill(); _ = cmd.Wait() })
			lines := make(chan string, 8)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			next := func(what string) string {
				select {
				case l, ok := <-lines:
					require.True(t, ok, "child exited before %s: %s", what, stderr.String())
					return l
				case <-ctx.Done():
					require.FailNow(t, "no "+what)
				}
				return ""
			}

			tokenA, err := strconv.ParseInt(strings.TrimPrefix(next("token"), "token "), 10, 64)
			require.NoError(t, err)
			require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP)) // a GC pause, a swapped-out VM
			stopped := time.Now()

			l, closeLocker, err := stackLocker(backend)
			require.NoError(t, err)
			defer closeLocker()
			var tokenB int64
			require.NoError(t, l.ExecuteWithLock(ctx, resource, ttl, func(ctx context.Context, token int64) error {
				tokenB = token
				return store.Write(ctx, resource, token, "written by the test")
			}))
			t.Logf("%s: child stopped with token %d; the test got the lock %v later with token %d",
				backend, tokenA, time.Since(stopped).Round(time.Millisecond), tokenB)
			assert.Greater(t, tokenB, tokenA)

			require.NoError(t, cmd.Process.Signal(syscall.SIGCONT))
			_, err = io.WriteString(stdin, "write now\n")
			require.NoError(t, err)
			write, result := next("the child's write"), next("the child's result")
			assert.Regexp(t, `^write: fencing: token \d+ for ".*" is stale: token \d+ has written$`, write)
			assert.Contains(t, result, "lock: lock lost", "the child's ExecuteWithLock reports the loss")
			require.NoError(t, cmd.Wait(), stderr.String())
			rec, _, err := store.Read(ctx, resource)
			require.NoError(t, err)
			assert.Equal(t, fencing.Record{Value: "written by the test", Token: tokenB}, rec)
		})
	}
}

// TestFaultEtcdKilledWhileHeld: etcd dies while a lock is held. The holder's
// context is cancelled within the lease TTL (it cannot renew, so it cannot
// know the lock is still its own); once etcd is back the lock works again,
// with a higher token.
func TestFaultEtcdKilledWhileHeld(t *testing.T) {
	stack.Require(t, stack.Etcd)
	c, err := stackEtcdClient()
	require.NoError(t, err)
	defer c.Close()
	e := newEtcd(t, c)
	resource := fmt.Sprintf("fault-etcd-%d", time.Now().UnixNano())
	const ttl = 2 * time.Second
	var tokenA int64
	var killed time.Time
	err = e.ExecuteWithLock(t.Context(), resource, ttl, func(ctx context.Context, token int64) error {
		tokenA = token
		stack.Kill(t, "etcd")
		killed = time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			require.FailNow(t, "no loss reported 10 s after etcd died")
		}
		t.Logf("loss reported %v after the kill: %v", time.Since(killed).Round(time.Millisecond), context.Cause(ctx))
		assert.Less(t, time.Since(killed), ttl, "within the lease's TTL")
		return nil
	})
	require.ErrorIs(t, err, ErrLockLost)
	stack.Restart(t, "etcd")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, e.ExecuteWithLock(ctx, resource, ttl, func(_ context.Context, token int64) error {
		assert.Greater(t, token, tokenA)
		return nil
	}), "etcd is back: the old lease expires and the lock is free")
}

// TestFaultEtcdSlowerThanTheTTLWithinTheCallersDeadline: the TTL bounds a
// step only for a caller without a deadline. A caller that gave a deadline
// waits for etcd up to it: a client reconnecting to a restarted etcd can
// take longer than a short lease's TTL (a busy make test failed
// TestFaultEtcdKilledWhileHeld's re-acquisition with "lease grant: context
// deadline exceeded" 2 s into its 30).
// Here etcd is paused for longer than the TTL while a locker with no lease
// yet, and one with a lease, call with a 30 s deadline.
func TestFaultEtcdSlowerThanTheTTLWithinTheCallersDeadline(t *testing.T) {
	stack.Require(t, stack.Etcd)
	c, err := stackEtcdClient()
	require.NoError(t, err)
	defer c.Close()
	resource := fmt.Sprintf("fault-etcd-slow-%d", time.Now().UnixNano())
	const ttl = 2 * time.Second
	warm := newEtcd(t, c)
	require.NoError(t, warm.ExecuteWithLock(t.Context(), resource+"-warm", 10*time.Second, func(context.Context, int64) error { return nil }))
	cold := newEtcd(t, c) // no lease yet: its first step is the grant

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stack.Pause(t, "etcd")
	paused := time.Now()
	errs := make(chan error, 2)
	go func() {
		errs <- cold.ExecuteWithLock(ctx, resource, ttl, func(context.Context, int64) error { return nil })
	}()
	go func() { // a 10 s lease outlives the pause: its put waits for etcd
		errs <- warm.ExecuteWithLock(ctx, resource+"-warm", 10*time.Second, func(context.Context, int64) error { return nil })
	}()
	time.Sleep(2*ttl - time.Since(paused)) // twice the grant's TTL
	stack.Resume(t, "etcd")
	for range 2 {
		require.NoError(t, <-errs, "etcd answered within the caller's deadline, after more than the TTL")
	}
}

// twoProcesses returns two lockers on the stack's etcd, each with a client
// of its own, as two processes would have.
func twoProcesses(t *testing.T) (a *Etcd, ca *clientv3.Client, b *Etcd, cb *clientv3.Client) {
	t.Helper()
	var err error
	ca, err = stackEtcdClient()
	require.NoError(t, err)
	t.Cleanup(func() { _ = ca.Close() })
	cb, err = stackEtcdClient()
	require.NoError(t, err)
	t.Cleanup(func() { _ = cb.Close() })
	return newEtcd(t, ca), ca, newEtcd(t, cb), cb
}

// TestFaultEtcdPausedAtRelease: etcd is stopped (SIGSTOP) as fn returns, so
// the release's delete times out. The delete is retried in the background:
// once etcd is resumed the key goes, and another locker gets the lock while
// the first locker's lease is still alive (the retry freed it, not the
// lease's expiry). Close waits for no retry left running (leakcheck).
func TestFaultEtcdPausedAtRelease(t *testing.T) {
	stack.Require(t, stack.Etcd)
	a, ca, b, cb := twoProcesses(t)
	resource := fmt.Sprintf("fault-etcd-release-%d", time.Now().UnixNano())
	const ttl = 10 * time.Second
	var lease int64
	require.NoError(t, a.ExecuteWithLock(t.Context(), resource, ttl, func(ctx context.Context, _ int64) error {
		resp, err := ca.Get(ctx, "/locks/"+resource+"/", clientv3.WithPrefix())
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1)
		lease = resp.Kvs[0].Lease
		stack.Pause(t, "etcd")
		return nil
	}))
	stack.Resume(t, "etcd")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, b.ExecuteWithLock(ctx, resource, ttl, func(ctx context.Context, _ int64) error {
		ttl, err := cb.TimeToLive(ctx, clientv3.LeaseID(lease))
		require.NoError(t, err)
		assert.Positive(t, ttl.TTL, "A's lease is alive: the retried delete freed the lock")
		return nil
	}), "the background retry deletes A's key once etcd is back")
	require.NoError(t, a.Close())
}

// TestFaultEtcdPausedPastTheLeaseTTL: etcd is stopped (SIGSTOP) for longer
// than the lease TTL while a process holds one lock and waits for another
// (both on its one shared lease) and a second process holds that other lock.
// Both holders learn they lost their locks while etcd is still stopped; the
// waiter does not get the lock while its predecessor may still be inside
// (it fails, or gets it after the predecessor's loss); once etcd is back,
// the first process locks again under a new lease, with higher tokens.
func TestFaultEtcdPausedPastTheLeaseTTL(t *testing.T) {
	stack.Require(t, stack.Etcd)
	a, _, b, cb := twoProcesses(t)
	held, waited := fmt.Sprintf("fault-etcd-held-%d", time.Now().UnixNano()), fmt.Sprintf("fault-etcd-waited-%d", time.Now().UnixNano())
	const ttl = 2 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	type outcome struct {
		err        error
		token      int64
		start, end time.Time // of fn
	}
	hold := func(l *Etcd, resource string, inside chan<- struct{}, out chan<- outcome) {
		var o outcome
		o.err = l.ExecuteWithLock(ctx, resource, ttl, func(ctx context.Context, token int64) error {
			o.token, o.start = token, time.Now()
			close(inside)
			<-ctx.Done() // until the loss (or the test's end)
			o.end = time.Now()
			return nil
		})
		out <- o
	}
	bInside, aInside := make(chan struct{}), make(chan struct{})
	bOut, aOut, wOut := make(chan outcome, 1), make(chan outcome, 1), make(chan outcome, 1)
	go hold(b, waited, bInside, bOut)
	<-bInside
	go hold(a, held, aInside, aOut)
	<-aInside
	go func() {
		var o outcome
		o.err = a.ExecuteWithLock(ctx, waited, ttl, func(_ context.Context, token int64) error {
			o.token, o.start = token, time.Now()
			return nil
		})
		wOut <- o
	}()
	require.Eventually(t, func() bool {
		resp, err := cb.Get(ctx, "/locks/"+waited+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	}, 10*time.Second, 10*time.Millisecond, "the waiter's key")

	stack.Pause(t, "etcd")
	paused := time.Now()
	var ho, bo outcome
	for _, got := range []struct {
		out  <-chan outcome
		into *outcome
	}{{aOut, &ho}, {bOut, &bo}} {
		select {
		case *got.into = <-got.out:
		case <-time.After(15 * time.Second):
			stack.Resume(t, "etcd")
			require.FailNow(t, "a holder never learned it lost its lock")
		}
	}
	time.Sleep(time.Until(paused.Add(2 * ttl))) // past the TTL: the leases expire
	stack.Resume(t, "etcd")
	t.Logf("holders told of the loss %v and %v after the pause", ho.end.Sub(paused).Round(time.Millisecond), bo.end.Sub(paused).Round(time.Millisecond))
	assert.ErrorIs(t, ho.err, ErrLockLost, "the first process's holder")
	assert.ErrorIs(t, bo.err, ErrLockLost, "the second process's holder")

	var wo outcome
	select {
	case wo = <-wOut:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the waiter never returned")
	}
	t.Logf("the waiter: %v", wo.err)
	if wo.err == nil {
		assert.True(t, wo.start.After(bo.end), "the waiter entered after its predecessor was told of the loss")
		assert.Greater(t, wo.token, bo.token)
	}

	for _, tt := range []struct {
		resource string
		above    int64
	}{{held, ho.token}, {waited, max(bo.token, wo.token)}} {
		require.NoError(t, a.ExecuteWithLock(ctx, tt.resource, ttl, func(_ context.Context, token int64) error {
			assert.Greater(t, token, tt.above)
			return nil
		}), "etcd is back: the process locks again under a new lease")
	}
}

// TestFaultEtcdDownWithoutDeadline: a caller whose context has no deadline
// gets ErrUnavailable while etcd is stopped (SIGSTOP) and while it is killed,
// from a locker that already has its lease and from one that must grant it;
// fn never runs. Before the fix the lock request waited for etcd for as long
// as it was down.
func TestFaultEtcdDownWithoutDeadline(t *testing.T) {
	stack.Require(t, stack.Etcd)
	c, err := stackEtcdClient()
	require.NoError(t, err)
	defer c.Close()
	resource := fmt.Sprintf("fault-etcd-down-%d", time.Now().UnixNano())
	const ttl = 2 * time.Second
	warm := newEtcd(t, c)
	require.NoError(t, warm.ExecuteWithLock(t.Context(), resource, ttl, func(context.Context, int64) error { return nil }))

	for _, fault := range []struct {
		name       string
		down, back func()
	}{
		{"paused", func() { stack.Pause(t, "etcd") }, func() { stack.Resume(t, "etcd") }},
		{"killed", func() { stack.Kill(t, "etcd") }, func() { stack.Restart(t, "etcd") }},
	} {
		cold := newEtcd(t, c) // no lease yet: its first step is the grant
		fault.down()
		errs := make(chan error, 2)
		for _, l := range []*Etcd{warm, cold} {
			go func() {
				errs <- l.ExecuteWithLock(context.WithoutCancel(t.Context()), resource, ttl, func(context.Context, int64) error {
					return errors.New("fn ran while etcd was " + fault.name)
				})
			}()
		}
		for range 2 {
			select {
			case err := <-errs:
				assert.ErrorIs(t, err, ErrUnavailable, "etcd %s", fault.name)
			case <-time.After(time.Minute):
				fault.back()
				require.FailNow(t, "ExecuteWithLock without a deadline still waiting a minute after etcd was "+fault.name)
			}
		}
		fault.back()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, warm.ExecuteWithLock(ctx, resource, ttl, func(context.Context, int64) error { return nil }), "etcd is back")
}
