package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// EtcdConfig tunes an Etcd locker; the zero value is the article's prefix and
// redsync's drift factor.
type EtcdConfig struct {
	// Prefix goes before the resource name (default "/locks/", the article's).
	Prefix string
	// DriftFactor is subtracted from each renewal's validity as DriftFactor ×
	// the lease TTL (0: RedsyncDriftFactor), for the rate difference between
	// this process's clock and the etcd leader's.
	DriftFactor float64
}

// Etcd is a Locker on an etcd cluster, concurrency.Mutex's queue with two
// changes that make a lock cycle two Raft writes (the key's put and its
// delete) instead of four, and a hand-over one watch event:
//
//   - The lease is the process's, not the lock's: one lease per TTL, granted
//     on first use and kept alive by a concurrency.Session until Close, shared
//     by every lock this Etcd takes (each under a key of its own). The
//     article's code grants and revokes a lease per lock; a frozen or cut-off
//     process loses all its locks together either way.
//   - A waiter watches the resource's prefix from the present (a watch etcd
//     serves from its synced group) before it lists the keys ahead of it, and
//     is woken by the deletion of the last of them. concurrency.Mutex watches
//     its predecessor from a past revision, which etcd catches up only every
//     100 ms (watchResyncPeriod): each hand-over waited up to 100 ms unless
//     the queue was deeper than that.
//
// Waiters queue in key-creation order, as with concurrency.Mutex, and the key
// layout is the same: Prefix + resource + "/" + a key per lock (and, for a
// lock request that failed in flight, Prefix + resource + "!abandoned/" + its
// key's name, under the lease: see acquire).
type Etcd struct {
	client *clientv3.Client
	cfg    EtcdConfig
	seq    atomic.Uint64

	mu     sync.Mutex
	leases map[int64]*sharedLease // by requested seconds
	closed bool
	free   []uint64       // numbers of lock keys whose release succeeded: reused, see ExecuteWithLock
	bg     sync.WaitGroup // releases being retried
}

var _ Locker = (*Etcd)(nil)

// sharedLease is one lease, the locks that use it and its validity: the
// latest renewal's send time + its TTL − drift, a time before which the
// leader cannot expire it.
type sharedLease struct {
	id      clientv3.LeaseID
	granted time.Duration
	session *concurrency.Session

	mu    sync.Mutex
	until time.Time
}

func (l *sharedLease) validUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

func (l *sharedLease) extend(until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.until) {
		l.until = until
	}
}

// NewEtcd returns an Etcd locker using client. Close it when done: until
// then it keeps a lease alive per TTL it has used.
func NewEtcd(client *clientv3.Client, cfg EtcdConfig) (*Etcd, error) {
	if client == nil {
		return nil, errInvalidf("etcd: nil client")
	}
	if cfg.DriftFactor < 0 || cfg.DriftFactor >= 1 {
		return nil, errInvalidf("etcd: DriftFactor %v is outside [0, 1)", cfg.DriftFactor)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/locks/"
	}
	if cfg.DriftFactor == 0 {
		cfg.DriftFactor = RedsyncDriftFactor
	}
	return &Etcd{client: client, cfg: cfg, leases: map[int64]*sharedLease{}}, nil
}

// Close revokes the leases, which deletes any lock key still under them: call
// it after every ExecuteWithLock has returned. It waits for releases still
// being retried.
func (e *Etcd) Close() error {
	e.mu.Lock()
	e.closed = true
	leases := e.leases
	e.leases = map[int64]*sharedLease{}
	e.mu.Unlock()
	var errs error
	for _, l := range leases {
		ctx, cancel := context.WithTimeout(context.Background(), min(l.granted, 2*time.Second))
		l.session.Orphan()
		if _, err := e.client.Revoke(ctx, l.id); err != nil {
			errs = errors.Join(errs, fmt.Errorf("etcd: revoke lease %x: %w", int64(l.id), err))
		}
		cancel()
	}
	e.bg.Wait()
	return errs
}

// lease returns the shared lease for secs, granting it if there is none or
// the last one ended.
func (e *Etcd) lease(ctx context.Context, secs int64) (*sharedLease, error) {
	e.mu.Lock()
	l, closed := e.leases[secs], e.closed
	e.mu.Unlock()
	if closed {
		return nil, errInvalidf("etcd: the locker is closed")
	}
	if l != nil {
		select {
		case <-l.session.Done():
		default:
			return l, nil
		}
	}
	// Bounded: the client waits for a connection to etcd for as long as the
	// context lets it, and a caller without a deadline must still learn that
	// etcd is down (ErrUnavailable).
	gctx, cancel := bounded(clientv3.WithRequireLeader(ctx), time.Duration(secs)*time.Second)
	defer cancel()
	sent := time.Now()
	resp, err := e.client.Grant(gctx, secs)
	if err != nil {
		return nil, err
	}
	granted := time.Duration(resp.TTL) * time.Second
	s, err := concurrency.NewSession(e.client, concurrency.WithLease(resp.ID), concurrency.WithTTL(int(resp.TTL)))
	if err != nil {
		e.revoke(resp.ID, granted)
		return nil, err
	}
	fresh := &sharedLease{id: resp.ID, granted: granted, session: s, until: sent.Add(granted - Drift(granted, e.cfg.DriftFactor))}
	e.mu.Lock()
	cur, closed := e.leases[secs], e.closed
	if !closed && (cur == nil || cur == l) {
		e.leases[secs] = fresh
		e.mu.Unlock()
		return fresh, nil
	}
	e.mu.Unlock()
	// Another caller replaced it meanwhile (or Close ran): use theirs.
	s.Orphan()
	e.revoke(resp.ID, granted)
	if closed {
		return nil, errInvalidf("etcd: the locker is closed")
	}
	return cur, nil
}

// ExecuteWithLock locks resource under the lease for LeaseSeconds(ttl) (the
// server may raise it to its minimum) and runs fn with the lock key's create
// revision as the fencing token. Once the lock is held the lease is renewed
// every third of its TTL and fn's validity deadline follows the renewals;
// the key is deleted when fn returns. For a caller whose context has no
// deadline, a grant, put or read etcd does not answer within the lease's TTL
// ends the call with ErrUnavailable; a caller with a deadline waits up to it.
// Waiting for a holder is bounded by the session, which ends when its
// keepalives go unanswered for a TTL.
func (e *Etcd) ExecuteWithLock(ctx context.Context, resource string, ttl time.Duration, fn func(ctx context.Context, token int64) error) error {
	if err := ValidateResource(resource); err != nil {
		return err
	}
	secs, err := LeaseSeconds(ttl)
	if err != nil {
		return err
	}
	l, err := e.lease(ctx, secs)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return e.acquireError(ctx, resource, "lease grant", err)
	}
	pfx := e.cfg.Prefix + resource + "/"
	// A key's number is reused once its release succeeded, as
	// concurrency.Mutex reuses its one key per session: etcd keeps a deleted
	// key in its index until the next compaction, and the first-created lookup
	// walks every key under the prefix, so a fresh key per lock added a key
	// to every later lookup's walk. An abandoned key's number is never reused
	// (its tombstone refuses the name), nor one whose delete is still retried.
	n := e.number()
	name := fmt.Sprintf("%x-%x", int64(l.id), n)
	// The tombstone is outside every resource's prefix ('!' is not allowed in
	// a resource name).
	key, tomb := pfx+name, e.cfg.Prefix+resource+"!abandoned/"+name
	token, err := e.acquire(ctx, l, pfx, key, tomb)
	if err != nil {
		return e.acquireError(ctx, resource, "lock", err)
	}
	defer func() {
		if e.release(l, key) {
			e.mu.Lock()
			e.free = append(e.free, n) // its key is gone: the number can name the next lock
			e.mu.Unlock()
		}
	}()

	// If waiting (or a slow grant) used up a third of the lease's known
	// validity, renew it before fn runs.
	until := l.validUntil()
	if time.Until(until) < 2*l.granted/3 {
		if until, err = e.renewNow(ctx, l); err != nil {
			return e.acquireError(ctx, resource, "renewing the lease after the wait", err)
		}
	}
	g := newGuard(ctx, until)
	stop := renew(g, l.granted, func() { e.keepAlive(g, l) })
	unwatch := context.AfterFunc(l.session.Ctx(), func() { g.lose(errSessionEnded) })
	fnErr := fn(g.ctx, token)
	unwatch()
	stop()
	return result(fnErr, g.stop())
}

// number returns a number for a lock key, a released one if there is one.
func (e *Etcd) number() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if k := len(e.free); k > 0 {
		n := e.free[k-1]
		e.free = e.free[:k-1]
		return n
	}
	return e.seq.Add(1)
}

// errSessionEnded is the loss the session reports: its keepalive stopped.
var errSessionEnded = errors.New("the session's keepalive ended (lease expired or keepalive responses stopped)")

// acquire puts key under the lease and waits until no key created before it
// is left under pfx; it returns key's create revision. On error the key is
// deleted.
//
// The put is refused once tomb exists. A put whose RPC failed may still be
// on its way (the server proposes a cancelled request's put in any order with
// a delete sent after it): abandon deletes the key and writes tomb in one
// transaction, so the put cannot land later and leave a key under the shared
// lease, which lives until Close and would block the resource until then.
func (e *Etcd) acquire(ctx context.Context, l *sharedLease, pfx, key, tomb string) (rev int64, err error) {
	// Bounded by the lease's TTL, as the grant is, when the caller's context
	// has no deadline: etcd may not answer.
	pctx, cancel := bounded(ctx, l.granted)
	resp, err := e.client.Txn(pctx).If(
		clientv3.Compare(clientv3.CreateRevision(tomb), "=", 0),
	).Then(
		clientv3.OpPut(key, "", clientv3.WithLease(l.id)),
		clientv3.OpGet(pfx, clientv3.WithFirstCreate()...),
	).Commit()
	cancel()
	if err != nil {
		// The put may have landed, or may land yet: take it back for good.
		e.retry(l, func(ctx context.Context) error {
			_, err := e.client.Txn(ctx).Then(clientv3.OpDelete(key), clientv3.OpPut(tomb, "", clientv3.WithLease(l.id))).Commit()
			return err
		})
		return 0, err
	}
	if !resp.Succeeded { // a fresh key per call: only an abandoned request finds its tomb
		return 0, fmt.Errorf("etcd: lock key %s was abandoned", key)
	}
	rev = resp.Header.Revision
	if first := resp.Responses[1].GetResponseRange().Kvs; len(first) == 0 || first[0].CreateRevision == rev {
		return rev, nil // uncontended: one round trip
	}
	if err := e.wait(ctx, l, pfx, key, rev); err != nil {
		e.release(l, key)
		return 0, err
	}
	return rev, nil
}

// wait returns once every key under pfx created before rev is deleted. It
// watches pfx from now, so the watch is in etcd's synced group and each
// deletion arrives as it happens, and only then lists the keys ahead, so no
// deletion falls between the list and the watch.
//
// A watch cut off (a lost connection, a restarted member) is resumed by the
// client from the last revision it saw; if that revision has been compacted
// meanwhile, etcd cancels the watch (ErrCompacted). The waiter then starts
// over, watch first and list second, keeping its key and so its place.
func (e *Etcd) wait(ctx context.Context, l *sharedLease, pfx, key string, rev int64) error {
	for {
		if err := e.waitOnce(ctx, l, pfx, key, rev); !errors.Is(err, rpctypes.ErrCompacted) {
			return err
		}
	}
}

func (e *Etcd) waitOnce(ctx context.Context, l *sharedLease, pfx, key string, rev int64) error {
	// Not WithRequireLeader: a waiter keeps waiting through a leader
	// election (the client resumes the watch on another member).
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := e.client.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
	select {
	case wr, ok := <-wch:
		if !ok || wr.Err() != nil || !wr.Created {
			return watchErr(ctx, wr, ok)
		}
	case <-l.session.Done():
		return errSessionEnded
	}
	gctx, gcancel := bounded(ctx, l.granted) // the session ends the watch below, not this read
	ahead, err := e.client.Get(gctx, pfx, clientv3.WithPrefix(), clientv3.WithMaxCreateRev(rev-1), clientv3.WithKeysOnly())
	gcancel()
	if err != nil {
		return err
	}
	left := make(map[string]bool, len(ahead.Kvs))
	for _, kv := range ahead.Kvs {
		left[string(kv.Key)] = true
	}
	for len(left) > 0 {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				return watchErr(ctx, wr, ok)
			}
			for _, ev := range wr.Events {
				if ev.Type != mvccpb.DELETE {
					continue
				}
				k := string(ev.Kv.Key)
				if k == key {
					return errSessionEnded // our key went with our lease
				}
				delete(left, k)
			}
		case <-l.session.Done():
			return errSessionEnded
		}
	}
	return nil
}

// watchErr says why a watch channel ended.
func watchErr(ctx context.Context, wr clientv3.WatchResponse, ok bool) error {
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case ok && wr.Err() != nil:
		return wr.Err()
	}
	return errors.New("watch ended")
}

// release deletes key, with a context of its own: a cancelled caller must
// not leave the lock held. The shared lease outlives the lock, so a delete
// that fails is retried in the background until it succeeds, the lease ends
// (which deletes the key) or the locker is closed. It reports whether the
// key was deleted now.
func (e *Etcd) release(l *sharedLease, key string) bool {
	return e.retry(l, func(ctx context.Context) error {
		_, err := e.client.Delete(ctx, key)
		return err
	})
}

// retry runs op (an idempotent write of a lock key) until it succeeds: once
// now, then in the background until it succeeds, the lease ends (which
// deletes the keys under it) or the locker is closed. It reports whether the
// first run succeeded.
func (e *Etcd) retry(l *sharedLease, op func(ctx context.Context) error) bool {
	del := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), min(l.granted, time.Second))
		defer cancel()
		return op(ctx)
	}
	if del() == nil {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false // Close revokes the lease, and the key with it
	}
	e.bg.Go(func() {
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			t := time.NewTimer(wait)
			select {
			case <-l.session.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if del() == nil {
				return
			}
		}
	})
	return false
}

// renewNow renews the lease once, within a third of its TTL, and returns the
// validity deadline the renewal gives.
func (e *Etcd) renewNow(ctx context.Context, l *sharedLease) (time.Time, error) {
	rctx, cancel := context.WithTimeout(ctx, l.granted/3)
	defer cancel()
	sent := time.Now()
	resp, err := e.client.KeepAliveOnce(rctx, l.id)
	if err != nil {
		return time.Time{}, err
	}
	ttl := time.Duration(resp.TTL) * time.Second
	until := sent.Add(ttl - Drift(ttl, e.cfg.DriftFactor))
	l.extend(until)
	return until, nil
}

// keepAlive renews the lease once and moves the validity deadline to when the
// renewal was sent plus the TTL it granted, minus the drift allowance: the
// leader renewed it no earlier than that, so it cannot expire the lease
// before. Only "lease not found" ends the lock early; an unreachable cluster
// leaves it to the deadline.
func (e *Etcd) keepAlive(g *guard, l *sharedLease) {
	ctx, cancel := context.WithDeadline(g.held, g.deadline())
	defer cancel()
	sent := time.Now()
	resp, err := e.client.KeepAliveOnce(ctx, l.id)
	switch {
	case err == nil:
		ttl := time.Duration(resp.TTL) * time.Second
		until := sent.Add(ttl - Drift(ttl, e.cfg.DriftFactor))
		l.extend(until)
		g.extend(until)
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		g.lose(fmt.Errorf("lease %x not found: it expired or was revoked", int64(l.id)))
	}
}

// revoke deletes a lease that no lock uses, bounded by its TTL.
func (e *Etcd) revoke(id clientv3.LeaseID, granted time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), min(granted, time.Second))
	defer cancel()
	_, _ = e.client.Revoke(ctx, id)
}

// bounded is ctx limited to d when it has no deadline of its own. A caller
// without a deadline learns within d that etcd does not answer
// (ErrUnavailable); one with a deadline has said how long it will wait, and
// a client reconnecting to a restarted etcd can take longer than a short
// lease's TTL (TestFaultEtcdSlowerThanTheTTLWithinTheCallersDeadline).
func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func (e *Etcd) acquireError(ctx context.Context, resource, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: etcd %q: %s: %w", ErrNotAcquired, resource, step, context.Cause(ctx))
	}
	return fmt.Errorf("%w: etcd %q: %s: %w", ErrUnavailable, resource, step, err)
}
