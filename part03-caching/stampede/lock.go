package stampede

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLockWait is returned by a Loader whose refresh waited RedisLock.Wait for another
// process's rebuild without seeing it land (and had no old value it could serve).
var ErrLockWait = errors.New("stampede: waited too long for another process's rebuild")

// RedisLock is the article's third stampede defence: a lock in Redis, so that of all
// the processes that find a key expired, one rebuilds it and the others wait for its
// result. Group deduplicates within a process only; with RedisLock, N pods make one
// backend call instead of N.
//
// The lock is SET key token NX PX TTL, with a random token per acquisition, and it is
// released by a compare-and-delete script, so a holder whose lock expired (its rebuild
// outlived TTL) cannot delete the lock another process holds now. TTL is a lease, not
// a guarantee: a rebuild that takes longer than TTL lets a second process rebuild too
// (harmless for a cache fill, which is idempotent; use a fencing token where it is
// not). The zero value of the timing fields means the defaults.
type RedisLock struct {
	Client redis.Cmdable
	Prefix string        // lock keys are Prefix+key
	TTL    time.Duration // lease: longer than a rebuild takes (default 10 s)
	Poll   time.Duration // how often a waiter re-checks the store and the lock (default 20 ms)
	Wait   time.Duration // the longest a waiter waits for a rebuild (default 2 s)
}

// unlockScript deletes the lock only if it still holds this acquisition's token.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// TryLock takes the lock for key if nobody holds it. It returns the token to pass to
// Unlock, and ok=false if another holder has it.
func (l *RedisLock) TryLock(ctx context.Context, key string) (token string, ok bool, err error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token = hex.EncodeToString(b)
	ok, err = l.Client.SetNX(ctx, l.Prefix+key, token, l.ttl()).Result()
	if err != nil {
		return "", false, fmt.Errorf("stampede: lock %s: %w", l.Prefix+key, err)
	}
	return token, ok, nil
}

// Unlock releases the lock for key if token still holds it, and reports whether it
// did (false: the lease expired and the lock is gone or someone else's).
func (l *RedisLock) Unlock(ctx context.Context, key, token string) (bool, error) {
	n, err := unlockScript.Run(ctx, l.Client, []string{l.Prefix + key}, token).Int()
	return n == 1, err
}

func (l *RedisLock) ttl() time.Duration  { return orDefault(l.TTL, 10*time.Second) }
func (l *RedisLock) poll() time.Duration { return orDefault(l.Poll, 20*time.Millisecond) }
func (l *RedisLock) wait() time.Duration { return orDefault(l.Wait, 2*time.Second) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// lockedCompute is refresh under the cross-process lock. The holder re-reads the store
// after acquiring (another process may have finished just before) and rebuilds.
// A process that finds the lock held serves the old value at once if it may (still
// valid, or within StaleFor), and otherwise polls the store until the holder's result
// lands, taking the lock itself if the holder disappears, for at most Lock.Wait.
func (l *Loader[V]) lockedCompute(ctx context.Context, key string, fetch func(context.Context) (V, error), seen *Entry[V]) (V, error) {
	var zero V
	deadline := l.now().Add(l.Lock.wait())
	for {
		token, ok, err := l.Lock.TryLock(ctx, key)
		if err != nil {
			// No lock service: rebuild without cross-process protection rather than fail
			// (Group still deduplicates within this process).
			l.storeErrs.Add(1)
			return l.compute(ctx, key, fetch)
		}
		if ok {
			defer func() {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.Lock.poll()+time.Second)
				defer cancel()
				_, _ = l.Lock.Unlock(uctx, key, token)
			}()
			if v, ok := l.refreshedMeanwhile(ctx, key, seen); ok {
				return v, nil
			}
			l.lockRebuilds.Add(1)
			return l.compute(ctx, key, fetch)
		}
		if seen != nil && l.now().Before(seen.Expiry.Add(l.StaleFor)) {
			l.lockBusy.Add(1) // someone else is rebuilding; the old value may still be served
			return seen.Value, nil
		}
		if !l.now().Before(deadline) {
			l.lockTimeouts.Add(1)
			return zero, ErrLockWait
		}
		t := time.NewTimer(l.Lock.poll())
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, ctx.Err()
		case <-t.C:
		}
		if v, ok := l.refreshedMeanwhile(ctx, key, seen); ok {
			l.lockWaits.Add(1)
			return v, nil
		}
	}
}
