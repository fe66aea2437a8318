package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
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

// Etcd is a Locker on an etcd cluster: a lease per ExecuteWithLock, kept alive
// by a concurrency.Session, and a concurrency.Mutex on the resource. Waiters
// queue in key-creation order and watch their predecessor, so a released lock
// passes to the next waiter without polling.
type Etcd struct {
	client *clientv3.Client
	cfg    EtcdConfig
}

var _ Locker = (*Etcd)(nil)

// NewEtcd returns an Etcd locker using client.
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
	return &Etcd{client: client, cfg: cfg}, nil
}

// ExecuteWithLock grants a lease of LeaseSeconds(ttl) (the server may raise
// it to its minimum), locks resource with it, and runs fn with the lock key's
// create revision as the fencing token. The session keeps the lease alive
// while the lock is awaited; once it is held, the lease is renewed every
// third of its TTL and fn's validity deadline follows the renewals. Revoking
// the lease at the end deletes the lock key, so there is no separate unlock.
func (e *Etcd) ExecuteWithLock(ctx context.Context, resource string, ttl time.Duration, fn func(ctx context.Context, token int64) error) error {
	if err := ValidateResource(resource); err != nil {
		return err
	}
	secs, err := LeaseSeconds(ttl)
	if err != nil {
		return err
	}
	sent := time.Now()
	lease, err := e.client.Grant(clientv3.WithRequireLeader(ctx), secs)
	if err != nil {
		return e.acquireError(ctx, resource, "lease grant", err)
	}
	granted := time.Duration(lease.TTL) * time.Second
	session, err := concurrency.NewSession(e.client, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(lease.TTL)))
	if err != nil {
		e.revoke(ctx, lease.ID, granted)
		return e.acquireError(ctx, resource, "session", err)
	}
	defer func() {
		session.Orphan()
		e.revoke(ctx, lease.ID, granted)
	}()

	// Wait for the lock; a session that ends (its lease expired) ends the wait.
	wctx, stopWait := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-session.Done():
			stopWait(errSessionEnded)
		case <-wctx.Done():
		}
	}()
	m := concurrency.NewMutex(session, e.cfg.Prefix+resource)
	err = m.Lock(wctx)
	stopWait(nil)
	if err != nil {
		if cause := context.Cause(wctx); errors.Is(cause, errSessionEnded) {
			err = cause
		}
		return e.acquireError(ctx, resource, "lock", err)
	}

	// The lease is surely valid until its grant was sent + its TTL. If waiting
	// (or a slow grant) used up a third of that, renew it before fn runs.
	until := sent.Add(granted - Drift(granted, e.cfg.DriftFactor))
	if time.Until(until) < 2*granted/3 {
		if until, err = e.renewNow(ctx, lease.ID, granted); err != nil {
			return e.acquireError(ctx, resource, "renewing the lease after the wait", err)
		}
	}
	g := newGuard(ctx, until)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { renew(done, g, granted, func() { e.keepAlive(g, lease.ID) }) })
	wg.Go(func() {
		select {
		case <-session.Done():
			g.lose(errSessionEnded)
		case <-done:
		}
	})
	owner := m.IsOwner() // CreateRevision(key) == the revision that created it
	token := (*pb.Compare)(&owner).GetCreateRevision()
	fnErr := fn(g.ctx, token)
	close(done)
	wg.Wait()
	return result(fnErr, g.stop())
}

// errSessionEnded is the loss the session reports: its keepalive stopped.
var errSessionEnded = errors.New("the session's keepalive ended (lease expired or keepalive responses stopped)")

// renewNow renews the lease once, within a third of its TTL, and returns the
// validity deadline the renewal gives.
func (e *Etcd) renewNow(ctx context.Context, id clientv3.LeaseID, granted time.Duration) (time.Time, error) {
	rctx, cancel := context.WithTimeout(ctx, granted/3)
	defer cancel()
	sent := time.Now()
	resp, err := e.client.KeepAliveOnce(rctx, id)
	if err != nil {
		return time.Time{}, err
	}
	ttl := time.Duration(resp.TTL) * time.Second
	return sent.Add(ttl - Drift(ttl, e.cfg.DriftFactor)), nil
}

// keepAlive renews the lease once and moves the validity deadline to when the
// renewal was sent plus the TTL it granted, minus the drift allowance: the
// leader renewed it no earlier than that, so it cannot expire the lease
// before. Only "lease not found" ends the lock early; an unreachable cluster
// leaves it to the deadline.
func (e *Etcd) keepAlive(g *guard, id clientv3.LeaseID) {
	ctx, cancel := context.WithDeadline(g.held, g.deadline())
	defer cancel()
	sent := time.Now()
	resp, err := e.client.KeepAliveOnce(ctx, id)
	switch {
	case err == nil:
		ttl := time.Duration(resp.TTL) * time.Second
		g.extend(sent.Add(ttl - Drift(ttl, e.cfg.DriftFactor)))
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		g.lose(fmt.Errorf("lease %x not found: it expired or was revoked", int64(id)))
	}
}

// revoke deletes the lease and so the lock key, with a context of its own: a
// cancelled caller must not leave the lock held until the lease expires. If
// it fails the lease still expires after its TTL.
func (e *Etcd) revoke(ctx context.Context, id clientv3.LeaseID, granted time.Duration) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(granted, time.Second))
	defer cancel()
	_, _ = e.client.Revoke(rctx, id)
}

func (e *Etcd) acquireError(ctx context.Context, resource, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: etcd %q: %s: %w", ErrNotAcquired, resource, step, context.Cause(ctx))
	}
	return fmt.Errorf("%w: etcd %q: %s: %w", ErrUnavailable, resource, step, err)
}
