// Package lock runs a function while holding a distributed lock, on Redlock
// (redsync's algorithm over independent Redis masters) or on etcd (a lease and
// concurrency.Mutex), behind one interface:
//
//	err := locker.ExecuteWithLock(ctx, "account:42", 10*time.Second,
//		func(ctx context.Context, token int64) error {
//			return store.Write(ctx, "account:42", token, value) // fencing.Store rejects stale tokens
//		})
//
// It fixes what the article's two ExecuteWithLock functions leave out:
//
//   - A fencing token. fn gets a number that is higher for every later holder
//     of the same resource: on etcd the lock key's create revision, on Redlock a
//     counter advanced on a majority of the masters by the script that takes
//     the lock (a second round trip only when the masters' counters differ). A
//     store that refuses tokens lower than the highest it has seen turns a
//     holder that paused past its TTL from a corrupting writer into a rejected
//     one (package fencing).
//   - Lock loss reported to fn. fn's context is cancelled, with cause
//     ErrLockLost, when the lock can no longer be trusted: a renewal says it is
//     gone (Redlock extend refused, etcd lease not found, session ended) or the
//     local validity deadline passes without a successful renewal. The deadline
//     is computed from when each renewal was sent, minus the drift allowance, so
//     it always falls before the server can expire the lock; etcd's own
//     Session.Done can fire up to a second after that.
//   - Renewal. The lock is extended (Redlock) or kept alive (etcd) every third
//     of its TTL while fn runs, so a slow fn keeps its lock and only a frozen
//     or cut-off process loses it. Renewal goes on until fn returns, also after
//     the caller's context is cancelled (fn sees that cancellation and may
//     still be inside its critical section), and a Redlock renewal counts as
//     soon as a quorum of masters renewed, so one paused master costs nothing.
//   - Release with a context of its own, so a cancelled caller context does not
//     leave the lock held until its TTL runs out.
//   - Explicit TTL rules. etcd leases are whole seconds: a TTL under one second
//     is rejected (the article's int(ttl.Seconds()) turns 500 ms into 0, which
//     concurrency.WithTTL replaces by its 60 s default) and a fraction is
//     rounded up; the server may raise it further to its minimum (2 s with the
//     default election timeout).
//   - Resource names that cannot collide: etcd's mutex prefix for "a" would
//     cover "a/b", so names are limited to [A-Za-z0-9._:-].
//
// Validity, MinValidity and the Redsync* constants are the article's
// MIN_VALIDITY arithmetic next to redsync's own (its Until()).
package lock
