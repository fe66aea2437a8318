package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Locker runs fn while holding the lock on resource. The lock's TTL bounds how
// long a crashed holder blocks the others; a live holder keeps the lock for as
// long as fn runs, also after ctx is cancelled (fn's context is, but fn may
// still be inside its critical section). fn's context is cancelled with cause
// ErrLockLost if the lock is lost before fn returns, and then ExecuteWithLock
// returns an error that wraps ErrLockLost (joined with fn's own error, if any).
type Locker interface {
	ExecuteWithLock(ctx context.Context, resource string, ttl time.Duration, fn func(ctx context.Context, token int64) error) error
}

// Errors callers can test with errors.Is.
var (
	// ErrInvalid is a bad argument: a resource name or a TTL the backend cannot
	// honour. Nothing was locked.
	ErrInvalid = errors.New("lock: invalid argument")
	// ErrNotAcquired means the lock was held by others until the caller's
	// context ended or the retries ran out. fn did not run.
	ErrNotAcquired = errors.New("lock: not acquired")
	// ErrUnavailable means the lock service could not answer with a quorum
	// (Redlock: fewer than N/2+1 masters; etcd: no leader or unreachable).
	// fn did not run.
	ErrUnavailable = errors.New("lock: lock service unavailable")
	// ErrLockLost is the cause of fn's cancelled context, and is wrapped by the
	// error ExecuteWithLock returns, when the lock ended before fn returned.
	ErrLockLost = errors.New("lock: lock lost")
)

// MaxResourceLen bounds a resource name; keys stay short and printable.
const MaxResourceLen = 200

// ValidateResource accepts 1 to MaxResourceLen bytes of [A-Za-z0-9._:-]. A
// '/' is refused because etcd's concurrency.Mutex waits on a key prefix: the
// lock on "orders" would also wait for the holders of "orders/42".
func ValidateResource(resource string) error {
	if resource == "" || len(resource) > MaxResourceLen {
		return fmt.Errorf("%w: resource name must be 1 to %d bytes, got %d", ErrInvalid, MaxResourceLen, len(resource))
	}
	for i := 0; i < len(resource); i++ {
		if c := resource[i]; !resourceByte(c) {
			return fmt.Errorf("%w: resource %q contains %q; use letters, digits, '.', '_', ':' or '-'", ErrInvalid, resource, c)
		}
	}
	return nil
}

func resourceByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '.' || c == '_' || c == ':' || c == '-'
}

func errInvalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// guard holds a lock's validity deadline and cancels the holder's context when
// it passes, or at once when a renewal reports the lock gone.
//
// Two contexts: held lives as long as the lock (until stop, or its loss) and
// is what the renewals run under; ctx is fn's, cancelled by the caller's
// context or by the loss. A caller that gives up does not stop the renewals:
// fn may still be inside its critical section, and the lock must not lapse
// under it.
type guard struct {
	ctx    context.Context // fn's: the caller's context, cancelled too on loss
	cancel context.CancelCauseFunc
	held   context.Context // the lock's: ends on loss or stop, not with the caller
	drop   context.CancelCauseFunc
	unlink func() bool // stops the loss from reaching ctx

	mu    sync.Mutex
	until time.Time
	timer *time.Timer
}

func newGuard(parent context.Context, until time.Time) *guard {
	g := &guard{until: until}
	g.ctx, g.cancel = context.WithCancelCause(parent)
	g.held, g.drop = context.WithCancelCause(context.WithoutCancel(parent))
	g.unlink = context.AfterFunc(g.held, func() { g.cancel(context.Cause(g.held)) })
	g.timer = time.AfterFunc(time.Until(until), g.expire)
	return g
}

// expire runs when the timer fires; a renewal may have moved the deadline
// since the timer was set.
func (g *guard) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if left := time.Until(g.until); left > 0 {
		g.timer.Reset(left)
		return
	}
	g.drop(fmt.Errorf("%w: validity ended at %s without a successful renewal", ErrLockLost, g.until.Format("15:04:05.000")))
}

// extend moves the deadline to until (a renewal succeeded).
func (g *guard) extend(until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held.Err() != nil || !until.After(g.until) {
		return
	}
	g.until = until
}

// lose ends the lock at once: it is known to be gone.
func (g *guard) lose(why error) { g.drop(fmt.Errorf("%w: %w", ErrLockLost, why)) }

// deadline is the current validity deadline.
func (g *guard) deadline() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until
}

// lost returns the ErrLockLost cause if the lock was lost, else nil.
func (g *guard) lost() error {
	if cause := context.Cause(g.held); errors.Is(cause, ErrLockLost) {
		return cause
	}
	return nil
}

// stop ends the guard once fn has returned; it returns the loss, if any.
func (g *guard) stop() error {
	g.timer.Stop()
	g.unlink()
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.cancel(context.Canceled)
	if err := g.lost(); err != nil {
		return err
	}
	if !time.Now().Before(g.until) { // fn returned after the deadline, before the timer ran
		return fmt.Errorf("%w: fn returned after the validity ended", ErrLockLost)
	}
	g.drop(context.Canceled)
	return nil
}

// renew calls f whenever less than two thirds of ttl is left before the
// validity deadline, until the returned stop is called or the lock is lost:
// every third of the TTL while renewals succeed, at once if taking the lock
// already used up a third, and every ttl/20 while they fail. f reports
// success by calling g.extend and loss by calling g.lose. f runs on a timer's
// goroutine, not one kept per lock; stop waits for a call in progress.
func renew(g *guard, ttl time.Duration, f func()) (stop func()) {
	var (
		// held while f runs: a channel, not a sync.Mutex, so that a stop
		// waiting for a renewal is durably blocked in a testing/synctest
		// bubble and the bubble's clock still advances for the renewal's
		// own timers (with a Mutex such a test hung).
		mu      = make(chan struct{}, 1)
		stopped bool
		t       *time.Timer
	)
	lock, unlock := func() { mu <- struct{}{} }, func() { <-mu }
	next := func() time.Duration { return max(time.Until(g.deadline().Add(-2*ttl/3)), ttl/20) }
	lock()
	defer unlock()
	t = time.AfterFunc(next(), func() {
		lock()
		defer unlock()
		if stopped || g.held.Err() != nil {
			return
		}
		f()
		if !stopped && g.held.Err() == nil {
			t.Reset(next())
		}
	})
	return func() {
		lock()
		defer unlock()
		stopped = true
		t.Stop()
	}
}

// result combines fn's error with the loss of the lock.
func result(fnErr, lost error) error {
	if lost == nil {
		return fnErr
	}
	return errors.Join(fnErr, lost)
}
