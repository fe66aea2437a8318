package lock

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
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

// Redlock is a Locker on N independent Redis masters: redsync's algorithm
// (tries, per-try timeout, validity, release) takes the lock on a majority
// with a script that also advances the fencing counter, so lock and token
// are one round trip; go-redsync/redsync renews the lock.
type Redlock struct {
	masters []redis.UniversalClient
	rs      *redsync.Redsync
	cfg     RedlockConfig
}

var _ Locker = (*Redlock)(nil)

// NewRedlock returns a Redlock over masters: independent Redis servers, not
// replicas of one another (a replica promoted after its master died may not
// have the lock, and two clients then both hold it), each one server: not a
// cluster client, since one script touches the lock and its counter, two
// keys in different slots. One master works too
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

// ExecuteWithLock locks resource on a majority of the masters for ttl, with a
// fencing token, runs fn while extending the lock every ttl/3, and unlocks.
// An uncontended cycle is two round trips to each master (lock with token,
// unlock), as redsync's lock without a token.
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
	name, fence := r.cfg.Prefix+"lock:"+resource, r.cfg.Prefix+"fence:"+resource
	value, err := lockValue()
	if err != nil {
		return err
	}
	gr, err := r.lock(ctx, name, fence, value, ttl)
	if err != nil {
		return r.acquireError(ctx, resource, err)
	}
	// Renewals go through a redsync handle on the lock just taken (same name
	// and value), made at the first renewal. It returns as soon as a quorum
	// renewed. redsync otherwise waits for every master, bounded only by the
	// validity deadline, so with one master paused the holder lost a lock
	// that two of three masters had renewed (TestFaultRedlockMasterPaused).
	// Taking and releasing the lock still wait for every master, bounded by
	// the attempt timeout, so a lock is set and cleared on all that answer.
	g := newGuard(ctx, gr.until)
	var renewal *redsync.Mutex
	extend := func() {
		if renewal == nil {
			renewal = r.rs.NewMutex(name, redsync.WithExpiry(ttl), redsync.WithTries(r.cfg.Tries),
				redsync.WithRetryDelayFunc(redsync.DelayFunc(r.cfg.RetryDelay)), redsync.WithDriftFactor(r.cfg.DriftFactor),
				redsync.WithTimeoutFactor(r.cfg.TimeoutFactor), redsync.WithValue(value), redsync.WithFailFast(true))
		}
		r.extend(g, renewal)
	}
	defer func() {
		// A context of its own: a caller that gave up must not leave the lock
		// held for its TTL. A failed release leaves the lock to expire.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(AttemptTimeout(ttl, r.cfg.TimeoutFactor), 100*time.Millisecond))
		r.unlock(uctx, name, value)
		cancel()
	}()

	token, err := r.settleToken(g, fence, gr)
	if err != nil {
		lost := g.stop()
		return fmt.Errorf("redlock %q: fencing token: %w", resource, errors.Join(err, lost))
	}
	stop := renew(g, ttl, extend)
	fnErr := fn(g.ctx, token)
	stop()
	return result(fnErr, g.stop())
}

// lockValue is a lock's random value, as redsync makes it: only the holder
// that set it can extend or delete the key.
func lockValue() (string, error) {
	b := make([]byte, 16)
	if _, err := crand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// acquireScript takes the lock and the fencing counter in one round trip: if
// the lock is free it sets it (SET NX PX) and increments the counter, else it
// reads the counter. Reply: {1, the incremented counter} or {0, the counter}.
var acquireScript = redis.NewScript(`
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
	return {1, redis.call("INCR", KEYS[2])}
end
return {0, tonumber(redis.call("GET", KEYS[2]) or "0")}`)

// grant is one successful try: on which masters the lock was set, each
// master's counter as the script returned it, and the validity deadline.
type grant struct {
	locked  []bool
	counter []int64 // -1: no answer
	until   time.Time
}

// lock is redsync's LockContext with acquireScript in place of SET NX: the
// same tries, retry delays, per-try timeout (TimeoutFactor × ttl), validity
// (ttl − the try's duration − DriftFactor × ttl), the same release on every
// master after a failed try (on a context of its own, where redsync uses the
// caller's) and the same errors. Each try waits for every
// master, bounded by the per-try timeout.
func (r *Redlock) lock(ctx context.Context, name, fence, value string, ttl time.Duration) (*grant, error) {
	var timer *time.Timer
	for try := range r.cfg.Tries {
		if try > 0 {
			if timer == nil {
				timer = time.NewTimer(r.cfg.RetryDelay(try))
			} else {
				timer.Reset(r.cfg.RetryDelay(try))
			}
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, redsync.ErrFailed
			case <-timer.C:
			}
		}
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout(ttl, r.cfg.TimeoutFactor))
		gr, locked, err := r.tryLock(actx, name, fence, value, ttl)
		cancel()
		now := time.Now()
		until := now.Add(Validity(ttl, now.Sub(start), r.cfg.DriftFactor))
		if locked >= Quorum(len(r.masters)) && now.Before(until) {
			gr.until = until
			return gr, nil
		}
		// On a context of its own, as the release after fn: a caller that gave
		// up mid-try must not leave the lock its scripts set held by no one
		// for the TTL (redsync releases on the caller's context).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AttemptTimeout(ttl, r.cfg.TimeoutFactor))
		r.unlock(rctx, name, value)
		cancel()
		if try == r.cfg.Tries-1 && err != nil {
			return nil, err
		}
	}
	return nil, redsync.ErrFailed
}

// unlockScript deletes the lock if it is still this holder's (redsync's
// release).
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// unlock releases the lock on every master at once (inline for one) and
// waits for all, bounded by ctx; a master that does not answer keeps the lock
// until it expires.
func (r *Redlock) unlock(ctx context.Context, name, value string) {
	r.each(func(i int) { _ = unlockScript.Run(ctx, r.masters[i], []string{name}, value).Err() })
}

// each runs f for every master at once (inline for one) and waits for all.
func (r *Redlock) each(f func(i int)) {
	if len(r.masters) == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for i := range r.masters {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

// tryLock runs acquireScript on every master at once (inline for one) and
// waits for all; the errors are redsync's types, as its LockContext returns.
func (r *Redlock) tryLock(ctx context.Context, name, fence, value string, ttl time.Duration) (*grant, int, error) {
	n := len(r.masters)
	gr := &grant{locked: make([]bool, n), counter: make([]int64, n)}
	errs := make([]error, n)
	one := func(i int) {
		gr.counter[i] = -1
		v, err := acquireScript.Run(ctx, r.masters[i], []string{name, fence}, value, ttl.Milliseconds()).Int64Slice()
		switch {
		case err != nil:
			errs[i] = err
		case len(v) != 2:
			errs[i] = fmt.Errorf("acquire script replied %v", v)
		default:
			gr.locked[i], gr.counter[i] = v[0] == 1, v[1]
		}
	}
	r.each(one)
	var (
		locked int
		taken  []int
		err    error
	)
	for i := range n {
		switch {
		case errs[i] != nil:
			err = errors.Join(err, &redsync.RedisError{Node: i, Err: errs[i]})
		case gr.locked[i]:
			locked++
		default:
			taken = append(taken, i)
			err = errors.Join(err, &redsync.ErrNodeTaken{Node: i})
		}
	}
	if len(taken) >= Quorum(n) {
		err = &redsync.ErrTaken{Nodes: taken}
	}
	return gr, locked, err
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

// settleToken turns a grant into the fencing token: one above every counter
// the try saw (the incremented ones on the masters it locked, the others
// read). The token is safe once a majority's counters are at least as high:
// a later holder locks a master of that majority, increments it past the
// token, and takes at least that. When the masters agree, as they do unless
// one lost its data, the masters locked are that majority already and the
// token costs nothing beyond acquireScript. Otherwise the token is written
// to the masters below it, each taking it only if it is above its own value:
// one more round trip when fewer than a majority agree; none to wait for when
// a majority agree and a master that answered is behind (it restarted
// empty), whose write goes on after the holder moved on. That write is still
// needed: left behind, the master stays behind for good, and a later cycle
// whose majority is it and another emptied master would hand out a token
// already given (TestRedlockEmptiedMasterIsRepairedWhenTheOthersAgree). Two
// takers of one value cannot both win a majority, since the master they
// share takes only the first. This relies on the lock
// (only the holder advances the counter) and on masters keeping their data:
// a master that restarted empty while another kept the counter is covered,
// not all of them restarting. A token written after the validity ended does
// not count: by then another holder may have locked and read the counter.
func (r *Redlock) settleToken(g *guard, key string, gr *grant) (int64, error) {
	n, q := len(r.masters), Quorum(len(r.masters))
	var token int64
	for i, c := range gr.counter {
		if gr.locked[i] {
			token = max(token, c)
		} else if c >= 0 {
			token = max(token, c+1)
		}
	}
	at := func(i int) bool { return gr.locked[i] && gr.counter[i] == token }
	agree, behind := 0, 0
	for i, c := range gr.counter {
		switch {
		case at(i):
			agree++
		case c >= 0:
			behind++
		}
	}
	if agree >= q && behind == 0 {
		return token, nil
	}
	ctx, cancel := context.WithDeadline(g.ctx, g.deadline())
	defer cancel()
	write := func(ctx context.Context, i int) (int64, error) {
		if at(i) {
			return 1, nil
		}
		return fenceAdvance.Run(ctx, r.masters[i], []string{key}, token).Int64()
	}
	ok, refused, errs := r.quorum(ctx, q, write, func(v int64) bool { return v == 1 })
	switch {
	case refused > n-q:
		return 0, fmt.Errorf("%w: another holder advanced the fencing counter past %d", ErrLockLost, token)
	case ok < q:
		return 0, fmt.Errorf("%w: wrote the counter on %d of %d masters, quorum is %d: %w", ErrUnavailable, ok, n, q, oneLine{errs})
	case !time.Now().Before(g.deadline()):
		return 0, fmt.Errorf("%w: fencing token %d taken after the validity ended", ErrLockLost, token)
	}
	return token, nil
}

// quorum runs f on every master at once and returns as soon as q of them
// answered with a value accept takes, or too many refused or failed for that
// to happen: how many accepted, how many answered but were refused, and the
// errors of those that failed. The slower masters' calls carry on until the
// context's deadline, so a counter write still reaches them after the holder
// moved on.
func (r *Redlock) quorum(ctx context.Context, q int, f func(context.Context, int) (int64, error), accept func(int64) bool) (ok, refused int, errs error) {
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
	for i := range r.masters {
		go func() {
			v, err := f(ctx, i)
			replies <- reply{i, v, err}
		}()
	}
	for answered := 0; answered < len(r.masters); answered++ {
		rep := <-replies
		switch {
		case rep.err != nil:
			errs = errors.Join(errs, fmt.Errorf("node #%d: %w", rep.node, rep.err))
		case accept(rep.v):
			ok++
		default:
			refused++
		}
		if ok >= q || answered+1-ok > len(r.masters)-q {
			break
		}
	}
	return ok, refused, errs
}
