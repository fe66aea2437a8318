package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	rsredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
)

// RedlockConfig tunes a Redlock. The zero value is redsync's own defaults
// (the Redsync* constants).
type RedlockConfig struct {
	// Prefix goes before the keys: Prefix+"lock:"+resource holds the lock (the
	// article's "lock:%s") and Prefix+"fence:"+resource the fencing counter.
	Prefix string
	// Tries is how many times one ExecuteWithLock tries to lock before it gives
	// up with ErrNotAcquired (0: RedsyncTries). The caller's context can end
	// the wait earlier.
	Tries int
	// RetryDelay is the pause before try number try (1, 2, …); nil means
	// redsync's random 50–250 ms. A random spread keeps contenders from
	// retrying in lockstep.
	RetryDelay func(try int) time.Duration
	// DriftFactor is subtracted from the validity as DriftFactor × TTL
	// (0: RedsyncDriftFactor).
	DriftFactor float64
	// TimeoutFactor bounds one try as TimeoutFactor × TTL (0:
	// RedsyncTimeoutFactor). It only works if the clients honour context
	// deadlines (go-redis: ContextTimeoutEnabled, or short read timeouts as the
	// article sets); otherwise a paused master holds every try for go-redis's
	// 3 s ReadTimeout.
	TimeoutFactor float64
}

// Redlock is a Locker on N independent Redis masters: go-redsync/redsync takes
// the lock on a majority, and a fencing counter is advanced on a majority
// while the lock is held.
type Redlock struct {
	masters []redis.UniversalClient
	rs      *redsync.Redsync
	cfg     RedlockConfig
}

var _ Locker = (*Redlock)(nil)

// NewRedlock returns a Redlock over masters: independent Redis servers, not
// replicas of one another (a replica promoted after its master died may not
// have the lock, and two clients then both hold it). One master works too
// (quorum 1), without Redlock's tolerance of a failed master.
func NewRedlock(masters []redis.UniversalClient, cfg RedlockConfig) (*Redlock, error) {
	switch {
	case len(masters) == 0:
		return nil, errInvalidf("redlock needs at least one master")
	case cfg.Tries < 0:
		return nil, errInvalidf("redlock: Tries %d is negative", cfg.Tries)
	case cfg.DriftFactor < 0 || cfg.DriftFactor >= 1:
		return nil, errInvalidf("redlock: DriftFactor %v is outside [0, 1)", cfg.DriftFactor)
	case cfg.TimeoutFactor < 0 || cfg.TimeoutFactor >= 1:
		return nil, errInvalidf("redlock: TimeoutFactor %v is outside [0, 1)", cfg.TimeoutFactor)
	}
	if cfg.Tries == 0 {
		cfg.Tries = RedsyncTries
	}
	if cfg.DriftFactor == 0 {
		cfg.DriftFactor = RedsyncDriftFactor
	}
	if cfg.TimeoutFactor == 0 {
		cfg.TimeoutFactor = RedsyncTimeoutFactor
	}
	if cfg.RetryDelay == nil {
		cfg.RetryDelay = func(int) time.Duration {
			return RedsyncRetryDelayMin + rand.N(RedsyncRetryDelayMax-RedsyncRetryDelayMin)
		}
	}
	pools := make([]rsredis.Pool, len(masters))
	for i, m := range masters {
		pools[i] = goredis.NewPool(m)
	}
	return &Redlock{masters: masters, rs: redsync.New(pools...), cfg: cfg}, nil
}

// ExecuteWithLock locks resource on a majority of the masters for ttl, takes
// a fencing token, runs fn while extending the lock every ttl/3, and unlocks.
// ttl must be at least 1 ms; Redis PX takes whole milliseconds, so a fraction
// is rounded up.
func (r *Redlock) ExecuteWithLock(ctx context.Context, resource string, ttl time.Duration, fn func(ctx context.Context, token int64) error) error {
	if err := ValidateResource(resource); err != nil {
		return err
	}
	if ttl < time.Millisecond {
		return errInvalidf("redlock: ttl %v is under Redis's 1ms resolution", ttl)
	}
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	name := r.cfg.Prefix + "lock:" + resource
	opts := []redsync.Option{redsync.WithExpiry(ttl), redsync.WithTries(r.cfg.Tries),
		redsync.WithRetryDelayFunc(redsync.DelayFunc(r.cfg.RetryDelay)),
		redsync.WithDriftFactor(r.cfg.DriftFactor), redsync.WithTimeoutFactor(r.cfg.TimeoutFactor)}
	m := r.rs.NewMutex(name, opts...)
	if err := m.LockContext(ctx); err != nil {
		return r.acquireError(ctx, resource, err)
	}
	// The renewals' handle on the same lock returns as soon as a quorum
	// renewed. redsync otherwise waits for every master, bounded only by
	// the validity deadline, so with one master paused the holder lost a lock
	// that two of three masters had renewed (TestFaultRedlockMasterPaused).
	// Taking and releasing the lock still wait for every master, bounded by
	// the attempt timeout, so a lock is set and cleared on all that answer.
	renewal := r.rs.NewMutex(name, append(opts, redsync.WithValue(m.Value()), redsync.WithFailFast(true))...)
	g := newGuard(ctx, m.Until())
	defer func() {
		// A context of its own: a caller that gave up must not leave the lock
		// held for its TTL. A failed release leaves the lock to expire.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(AttemptTimeout(ttl, r.cfg.TimeoutFactor), 100*time.Millisecond))
		_, _ = m.UnlockContext(uctx)
		cancel()
	}()

	tctx, cancel := context.WithDeadline(g.ctx, g.deadline())
	token, err := r.nextToken(tctx, r.cfg.Prefix+"fence:"+resource, g, AttemptTimeout(ttl, r.cfg.TimeoutFactor))
	cancel()
	if err != nil {
		lost := g.stop()
		return fmt.Errorf("redlock %q: fencing token: %w", resource, errors.Join(err, lost))
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { renew(done, g, ttl, func() { r.extend(g, renewal) }) })
	fnErr := fn(g.ctx, token)
	close(done)
	wg.Wait()
	return result(fnErr, g.stop())
}

// extend renews the lock; only a definite answer (the lock is someone else's
// or gone on too many masters) ends it early, an unreachable master leaves it
// to the validity deadline. ExtendContext returns once a quorum renewed; the
// other masters' renewals go on until the deadline, not cancelled on return,
// so a master that is merely slow still renews.
func (r *Redlock) extend(g *guard, m *redsync.Mutex) {
	deadline := g.deadline()
	ctx, cancel := context.WithDeadline(g.held, deadline)
	time.AfterFunc(time.Until(deadline), cancel)
	ok, err := m.ExtendContext(ctx)
	switch {
	case ok:
		g.extend(m.Until())
	case errors.Is(err, redsync.ErrExtendFailed), refused(err) > len(r.masters)-Quorum(len(r.masters)):
		g.lose(fmt.Errorf("extend refused: %w", err))
	}
}

// acquireError says why LockContext failed: the caller's context, masters
// that did not answer, or other holders.
func (r *Redlock) acquireError(ctx context.Context, resource string, err error) error {
	n, q := len(r.masters), Quorum(len(r.masters))
	if ctx.Err() != nil {
		return fmt.Errorf("%w: redlock %q: %w", ErrNotAcquired, resource, context.Cause(ctx))
	}
	if failed := count[*redsync.RedisError](err); failed > n-q {
		return fmt.Errorf("%w: redlock %q: %d of %d masters failed, quorum is %d: %w", ErrUnavailable, resource, failed, n, q, oneLine{err})
	}
	return fmt.Errorf("%w: redlock %q: held by another holder after %d tries: %w", ErrNotAcquired, resource, r.cfg.Tries, oneLine{err})
}

// oneLine prints errors joined by errors.Join on one line ("a; b" instead of
// "a\nb"), and still unwraps to them.
type oneLine struct{ err error }

func (e oneLine) Error() string { return strings.ReplaceAll(fmt.Sprint(e.err), "\n", "; ") }
func (e oneLine) Unwrap() error { return e.err }

// refused counts the masters whose answer in err was "not your lock":
// redsync reports them as one ErrTaken once they are a quorum, and as
// ErrNodeTaken each otherwise.
func refused(err error) int {
	var taken *redsync.ErrTaken
	if errors.As(err, &taken) {
		return len(taken.Nodes)
	}
	return count[*redsync.ErrNodeTaken](err)
}

// count returns how many of the errors joined in err are an E.
func count[E error](err error) int {
	if err == nil {
		return 0
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		n := 0
		for _, e := range joined.Unwrap() {
			n += count[E](e)
		}
		return n
	}
	var e E
	if errors.As(err, &e) {
		return 1
	}
	return 0
}

// fenceAdvance sets the counter to ARGV[1] if that is higher than its value.
var fenceAdvance = redis.NewScript(`
local cur = tonumber(redis.call("GET", KEYS[1]) or "0")
if cur < tonumber(ARGV[1]) then
	redis.call("SET", KEYS[1], ARGV[1])
	return 1
end
return 0`)

// nextToken takes the fencing token: it reads the counter from a majority
// of the masters (and from the others that answer within grace), and writes
// max+1 to a majority, each master taking it only if it is above its own
// value. A later holder's read majority shares a master with this write
// majority, so it reads at least this token and takes a higher one; two
// takers of one value cannot both win a majority, since the master they share
// takes only the first. This relies on the lock (only the holder advances the
// counter) and on masters keeping their data: the grace read covers masters
// that restarted empty while another kept the counter, not all of them
// restarting. A token written after the validity ended does not count: by
// then another holder may have read the counter.
func (r *Redlock) nextToken(ctx context.Context, key string, g *guard, grace time.Duration) (int64, error) {
	n, q := len(r.masters), Quorum(len(r.masters))
	var highest int64
	read := func(ctx context.Context, c redis.UniversalClient) (int64, error) {
		v, err := c.Get(ctx, key).Int64()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		return v, err
	}
	ok, _, errs := r.quorum(ctx, q, grace, read, func(v int64) bool { highest = max(highest, v); return true })
	if ok < q {
		return 0, fmt.Errorf("%w: read the counter on %d of %d masters, quorum is %d: %w", ErrUnavailable, ok, n, q, oneLine{errs})
	}
	next := highest + 1
	write := func(ctx context.Context, c redis.UniversalClient) (int64, error) {
		return fenceAdvance.Run(ctx, c, []string{key}, next).Int64()
	}
	ok, refused, errs := r.quorum(ctx, q, 0, write, func(v int64) bool { return v == 1 })
	switch {
	case refused > n-q:
		return 0, fmt.Errorf("%w: another holder advanced the fencing counter past %d", ErrLockLost, next)
	case ok < q:
		return 0, fmt.Errorf("%w: wrote the counter on %d of %d masters, quorum is %d: %w", ErrUnavailable, ok, n, q, oneLine{errs})
	case !time.Now().Before(g.deadline()):
		return 0, fmt.Errorf("%w: fencing token %d taken after the validity ended", ErrLockLost, next)
	}
	return next, nil
}

// quorum runs f on every master at once and returns as soon as q of them
// answered with a value accept takes, or too many refused or failed for that
// to happen: how many accepted, how many answered but were refused, and the
// errors of those that failed. With grace > 0 it then waits up to grace for
// the other masters too. The slower masters' calls carry on until the
// validity deadline, so a counter write still reaches them after the holder
// moved on.
func (r *Redlock) quorum(ctx context.Context, q int, grace time.Duration, f func(context.Context, redis.UniversalClient) (int64, error), accept func(int64) bool) (ok, refused int, errs error) {
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), d)
		time.AfterFunc(time.Until(d), cancel)
	}
	type reply struct {
		node int
		v    int64
		err  error
	}
	replies := make(chan reply, len(r.masters))
	for i, c := range r.masters {
		go func() {
			v, err := f(ctx, c)
			replies <- reply{i, v, err}
		}()
	}
	var late <-chan time.Time
	for answered := 0; answered < len(r.masters); answered++ {
		var rep reply
		select {
		case rep = <-replies:
		case <-late:
			return ok, refused, errs
		}
		switch {
		case rep.err != nil:
			errs = errors.Join(errs, fmt.Errorf("node #%d: %w", rep.node, rep.err))
		case accept(rep.v):
			ok++
		default:
			refused++
		}
		if late == nil && (ok >= q || answered+1-ok > len(r.masters)-q) {
			if grace <= 0 {
				break
			}
			t := time.NewTimer(grace)
			defer t.Stop()
			late = t.C
		}
	}
	return ok, refused, errs
}
