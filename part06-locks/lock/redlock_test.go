package lock

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fastRetry keeps contended tests short: a 1–4 ms pause between tries, and
// tries enough for any test's contention.
var fastRetry = RedlockConfig{Tries: 100_000, RetryDelay: func(try int) time.Duration { return time.Duration(1+try%4) * time.Millisecond }}

func newRedlock(t testing.TB, clients []redis.UniversalClient, cfg RedlockConfig) *Redlock {
	t.Helper()
	r, err := NewRedlock(clients, cfg)
	require.NoError(t, err)
	return r
}

func TestRedlockTokensIncreaseAndKeysAreCleanedUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		r := newRedlock(t, clients, RedlockConfig{})
		for want := int64(1); want <= 3; want++ {
			err := r.ExecuteWithLock(t.Context(), "account:42", time.Second, func(ctx context.Context, token int64) error {
				assert.Equal(t, want, token)
				locked := 0
				for _, mr := range mrs {
					if mr.Exists("lock:account:42") {
						locked++
					}
				}
				assert.Equal(t, 3, locked, "locked on every master")
				return nil
			})
			require.NoError(t, err)
		}
		synctest.Wait() // the counter's write on the master after the quorum
		for i, mr := range mrs {
			assert.False(t, mr.Exists("lock:account:42"), "master %d: unlocked", i)
			v, err := mr.Get("fence:account:42")
			require.NoError(t, err)
			assert.Equal(t, "3", v, "master %d: the fencing counter", i)
		}
	})
}

func TestRedlockMutualExclusion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, clients := masters(t, 3)
		mutualExclusion(t, newRedlock(t, clients, fastRetry), "hot", time.Second, 8, 25)
	})
}

// A slow fn keeps its lock: the lock is extended every ttl/3 and nobody else
// gets it, however long fn runs.
func TestRedlockExtendsWhileFnRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		r := newRedlock(t, clients, RedlockConfig{})
		other := newRedlock(t, clients, RedlockConfig{Tries: 3})
		err := r.ExecuteWithLock(t.Context(), "slow", time.Second, func(ctx context.Context, token int64) error {
			for range 10 {
				time.Sleep(time.Second)
				require.NoError(t, ctx.Err(), "fn's context while the lock is extended")
				err := other.ExecuteWithLock(t.Context(), "slow", time.Second, func(context.Context, int64) error {
					t.Error("a second holder while the first runs")
					return nil
				})
				require.ErrorIs(t, err, ErrNotAcquired)
				assert.Greater(t, mrs[0].TTL("lock:slow"), 600*time.Millisecond, "extended")
			}
			return nil
		})
		require.NoError(t, err)
	})
}

// Lock loss reaches fn through its context, with cause ErrLockLost, and
// ExecuteWithLock reports it even when fn returns nil.
func TestRedlockLossIsReported(t *testing.T) {
	const ttl = 3 * time.Second
	for _, tt := range []struct {
		name   string
		lose   func(ms []*master)
		within time.Duration // from the loss to the cancellation
		cause  string
	}{
		{"keys expired and taken by another holder", func(ms []*master) {
			for _, m := range ms[:2] { // a majority now belongs to someone else
				m.mr.Del("lock:res")
				require.NoError(t, m.mr.Set("lock:res", "another holder"))
			}
		}, ttl / 3, "extend refused"},
		{"holder cut off from every master", func(ms []*master) {
			for _, m := range ms {
				m.gate.Freeze()
			}
		}, ttl, "validity ended"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ms, clients := newMasters(t, 3)
				r := newRedlock(t, clients, RedlockConfig{})
				var lostAt, lostAfter time.Time
				var start time.Time
				err := r.ExecuteWithLock(t.Context(), "res", ttl, func(ctx context.Context, token int64) error {
					start = time.Now()
					tt.lose(ms)
					lostAt = time.Now()
					<-ctx.Done()
					lostAfter = time.Now()
					cause := context.Cause(ctx)
					assert.ErrorIs(t, cause, ErrLockLost)
					assert.ErrorContains(t, cause, tt.cause)
					return nil
				})
				require.ErrorIs(t, err, ErrLockLost, "reported although fn returned nil")
				if tt.cause == "extend refused" { // the safe unlock left the new holder's keys alone
					for _, m := range ms[:2] {
						v, err := m.mr.Get("lock:res")
						require.NoError(t, err)
						assert.Equal(t, "another holder", v)
					}
				}
				assert.LessOrEqual(t, lostAfter.Sub(lostAt), tt.within)
				// The holder stops before its keys can expire on any master.
				assert.Less(t, lostAfter.Sub(start), ttl)
			})
		})
	}
}

// A caller whose context is cancelled still releases the lock: the unlock
// has a context of its own, and the next holder gets the lock at once.
func TestRedlockUnlocksAfterTheCallerGaveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		r := newRedlock(t, clients, RedlockConfig{Tries: 1})
		ctx, cancel := context.WithCancel(t.Context())
		err := r.ExecuteWithLock(ctx, "res", time.Minute, func(ctx context.Context, token int64) error {
			cancel() // the request that held the lock was abandoned
			return ctx.Err()
		})
		require.ErrorIs(t, err, context.Canceled)
		for _, mr := range mrs {
			assert.False(t, mr.Exists("lock:res"))
		}
		require.NoError(t, r.ExecuteWithLock(t.Context(), "res", time.Minute, func(context.Context, int64) error { return nil }))
	})
}

// A caller that gives up (its context cancelled) while fn is still inside
// its critical section does not end the lock under fn: the renewals go on
// until fn returns, and nobody else gets the lock meanwhile. fn sees the
// caller's cancellation, and ExecuteWithLock reports no loss. (Renewal used
// to stop with the caller's context: the lock lapsed at its TTL and another
// holder took it while fn ran.)
func TestRedlockKeepsTheLockUntilFnReturnsAfterTheCallerGaveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, clients := masters(t, 3)
		r := newRedlock(t, clients, RedlockConfig{})
		other := newRedlock(t, clients, RedlockConfig{Tries: 1})
		ctx, cancel := context.WithCancel(t.Context())
		err := r.ExecuteWithLock(ctx, "res", time.Second, func(ctx context.Context, _ int64) error {
			cancel()
			for range 5 { // fn takes five TTLs to wind down
				time.Sleep(time.Second)
				err := other.ExecuteWithLock(t.Context(), "res", time.Second, func(context.Context, int64) error {
					t.Error("a second holder while the first is still inside")
					return nil
				})
				assert.ErrorIs(t, err, ErrNotAcquired)
			}
			assert.Equal(t, context.Canceled, context.Cause(ctx), "fn sees the caller's cancellation, not a loss")
			return nil
		})
		assert.NoError(t, err)
	})
}

// The article's ExecuteWithLock unlocks with the caller's context: once that
// is cancelled the unlock fails and the lock stays for its whole TTL.
func TestArticleUnlockWithCancelledContextLeavesTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		rs := redsync.New(pools(clients)...)
		ctx, cancel := context.WithCancel(t.Context())
		m := rs.NewMutex("lock:res", redsync.WithExpiry(time.Minute), redsync.WithTries(5), redsync.WithRetryDelay(100*time.Millisecond))
		require.NoError(t, m.LockContext(ctx))
		cancel() // fn returned because the request was cancelled
		ok, err := m.UnlockContext(ctx)
		assert.False(t, ok)
		assert.ErrorIs(t, err, context.Canceled)
		for _, mr := range mrs {
			assert.Equal(t, time.Minute, mr.TTL("lock:res"), "still locked for the whole TTL")
		}
		err = rs.NewMutex("lock:res", redsync.WithTries(5), redsync.WithRetryDelay(100*time.Millisecond)).Lock()
		var taken *redsync.ErrTaken
		assert.ErrorAs(t, err, &taken, "the next caller, five tries later")
	})
}

// Quorum: with one master of three down the lock works and tokens keep
// increasing; with two down it fails with ErrUnavailable, naming the count,
// and fn never runs.
func TestRedlockQuorum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms, clients := newMasters(t, 3)
		r := newRedlock(t, clients, RedlockConfig{Tries: 3})
		var last int64
		run := func() error {
			return r.ExecuteWithLock(t.Context(), "q", time.Second, func(_ context.Context, token int64) error {
				assert.Greater(t, token, last)
				last = token
				return nil
			})
		}
		require.NoError(t, run())
		ms[1].crash()
		require.NoError(t, run(), "2 of 3 masters are a quorum")
		ms[2].crash()
		err := r.ExecuteWithLock(t.Context(), "q", time.Second, func(context.Context, int64) error {
			t.Error("fn ran without a quorum")
			return nil
		})
		require.ErrorIs(t, err, ErrUnavailable)
		assert.ErrorContains(t, err, "2 of 3 masters failed, quorum is 2")
		assert.NotErrorIs(t, err, ErrNotAcquired)
	})
}

// A master that comes back empty (no persistence) cannot lower the tokens:
// the read majority still includes a master that kept the counter.
func TestRedlockTokenSurvivesAnEmptiedMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		r := newRedlock(t, clients, RedlockConfig{})
		var tokens []int64
		for i := range 4 {
			if i == 2 {
				mrs[0].FlushAll()
			}
			require.NoError(t, r.ExecuteWithLock(t.Context(), "acct", time.Second, func(_ context.Context, token int64) error {
				tokens = append(tokens, token)
				return nil
			}))
		}
		assert.Equal(t, []int64{1, 2, 3, 4}, tokens)
	})
}

// A master that restarted empty is brought back up to the token by the first
// cycle after it, although the two others agree and are a quorum: otherwise
// it stays behind for good, and a later cycle whose majority is it and
// another emptied master (the one that kept the counter unreachable) hands
// out a token already given.
func TestRedlockEmptiedMasterIsRepairedWhenTheOthersAgree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms, clients := newMasters(t, 3)
		r := newRedlock(t, clients, RedlockConfig{})
		var tokens []int64
		cycle := func() {
			require.NoError(t, r.ExecuteWithLock(t.Context(), "acct", time.Second, func(_ context.Context, token int64) error {
				tokens = append(tokens, token)
				return nil
			}))
			synctest.Wait() // the writes on the masters after the quorum
		}
		cycle()
		ms[2].mr.FlushAll() // restarted empty
		cycle()
		v, err := ms[2].mr.Get("fence:acct")
		require.NoError(t, err)
		assert.Equal(t, "2", v, "the emptied master brought up to the token")
		ms[1].mr.FlushAll() // later another restarts empty, while the one that kept the counter is down
		ms[0].crash()
		cycle()
		assert.Equal(t, []int64{1, 2, 3}, tokens, "each token above the one before")
	})
}

// Two masters of three emptied: the one that kept the counter refuses the lock
// (held: the key is set there by hand) but its counter still counts, and the
// token is written back to the masters below it before fn runs.
func TestRedlockTokenWrittenBackToEmptiedMasters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		require.NoError(t, mrs[2].Set("fence:acct", "7"))
		require.NoError(t, mrs[2].Set("lock:acct", "another holder, on this master only"))
		r := newRedlock(t, clients, RedlockConfig{})
		require.NoError(t, r.ExecuteWithLock(t.Context(), "acct", time.Second, func(_ context.Context, token int64) error {
			assert.Equal(t, int64(8), token, "above the counter the refusing master kept")
			synctest.Wait() // the write on the master after the quorum
			for i, mr := range mrs {
				v, err := mr.Get("fence:acct")
				assert.NoError(t, err)
				assert.Equal(t, "8", v, "master %d: the token written back", i)
			}
			return nil
		}))
	})
}

// A token takes a second phase when the masters' counters disagree (one lost
// its data): the token is written to the masters below it. If another holder
// advances the counter in between, this holder is not alone: fn does not run
// and the loss is reported.
func TestRedlockCounterAdvancedByAnotherHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		require.NoError(t, mrs[0].Set("fence:x", "5")) // the others lost theirs
		var once sync.Once
		for _, c := range clients {
			c.(*redis.Client).AddHook(&beforeFenceWrite{do: func() {
				once.Do(func() {
					for _, mr := range mrs {
						assert.NoError(t, mr.Set("fence:x", "100"))
					}
				})
			}})
		}
		r := newRedlock(t, clients, RedlockConfig{})
		err := r.ExecuteWithLock(t.Context(), "x", time.Second, func(context.Context, int64) error {
			t.Error("fn ran with a token another holder had passed")
			return nil
		})
		require.ErrorIs(t, err, ErrLockLost)
		assert.ErrorContains(t, err, "another holder advanced the fencing counter")
	})
}

// A caller that gives up while its try is in flight leaves no lock behind:
// the release after the failed try runs on a context of its own, as the
// release after fn does. On the caller's context it was never sent, and the
// lock the scripts had set stayed on every master for its TTL, held by no one.
func TestRedlockTryCancelledInFlightReleasesTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 3)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		for _, c := range clients {
			c.(*redis.Client).AddHook(&afterAcquire{fence: "fence:gone", do: cancel})
		}
		r := newRedlock(t, clients, RedlockConfig{})
		err := r.ExecuteWithLock(ctx, "gone", 10*time.Second, func(context.Context, int64) error {
			t.Error("fn ran for a caller that gave up")
			return nil
		})
		require.ErrorIs(t, err, ErrNotAcquired)
		for i, mr := range mrs {
			assert.False(t, mr.Exists("lock:gone"), "master %d: the lock the script set is released", i)
		}
	})
}

// afterAcquire lets the acquire script for fence run, then calls do and
// answers context.Canceled: a caller that gave up after the script landed.
type afterAcquire struct {
	fence string
	do    func()
}

func (h *afterAcquire) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *afterAcquire) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *afterAcquire) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && slices.Contains(cmd.Args(), any(h.fence)) {
			h.do()
			cmd.SetErr(context.Canceled)
			return context.Canceled
		}
		return err
	}
}

// beforeFenceWrite runs do before the script that writes a token to the
// masters behind it.
type beforeFenceWrite struct{ do func() }

func (h *beforeFenceWrite) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *beforeFenceWrite) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *beforeFenceWrite) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if slices.Contains(cmd.Args(), any(fenceAdvance.Hash())) && slices.Contains(cmd.Args(), any("fence:x")) {
			h.do()
		}
		return next(ctx, cmd)
	}
}

func TestRedlockTTLIsRoundedUpToAMillisecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mrs, clients := masters(t, 1)
		r := newRedlock(t, clients, RedlockConfig{})
		require.NoError(t, r.ExecuteWithLock(t.Context(), "r", 1500*time.Microsecond, func(context.Context, int64) error {
			assert.Equal(t, 2*time.Millisecond, mrs[0].TTL("lock:r"), "PX 2, not a truncated PX 1")
			return nil
		}))
	})
}

func TestInvalidArguments(t *testing.T) {
	_, clients := masters(t, 3)
	r := newRedlock(t, clients, RedlockConfig{})
	e := newEtcd(t, etcdClient(t))
	never := func(context.Context, int64) error {
		t.Error("fn ran on an invalid call")
		return nil
	}
	for _, tt := range []struct {
		name     string
		locker   Locker
		resource string
		ttl      time.Duration
		msg      string
	}{
		{"redlock zero ttl", r, "a", 0, "under Redis's 1ms resolution"},
		{"redlock negative ttl", r, "a", -time.Second, "under Redis's 1ms resolution"},
		{"redlock sub-millisecond ttl", r, "a", 999 * time.Microsecond, "under Redis's 1ms resolution"},
		{"etcd sub-second ttl", e, "a", 500 * time.Millisecond, "ttl 500ms is under 1s"},
		{"empty resource", r, "", time.Second, "1 to 200 bytes"},
		{"long resource", e, strings.Repeat("a", 201), time.Second, "1 to 200 bytes, got 201"},
		{"slash nests etcd prefixes", e, "orders/42", time.Second, `contains '/'`},
		{"space", r, "a b", time.Second, `contains ' '`},
		{"newline", r, "a\n", time.Second, `contains '\n'`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.locker.ExecuteWithLock(t.Context(), tt.resource, tt.ttl, never)
			require.ErrorIs(t, err, ErrInvalid)
			assert.ErrorContains(t, err, tt.msg)
		})
	}
	for _, cfg := range []RedlockConfig{{Tries: -1}, {DriftFactor: 1}, {DriftFactor: -0.1}, {TimeoutFactor: 2}} {
		_, err := NewRedlock(clients, cfg)
		assert.ErrorIs(t, err, ErrInvalid, "%+v", cfg)
	}
	_, err := NewRedlock(nil, RedlockConfig{})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = NewEtcd(nil, EtcdConfig{})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.NoError(t, ValidateResource("campaign:lucky-campaign-2024"), "the article's key")
}

func TestFnErrorIsReturnedAsIs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, clients := masters(t, 3)
		r := newRedlock(t, clients, RedlockConfig{})
		boom := errors.New("boom")
		err := r.ExecuteWithLock(t.Context(), "e", time.Second, func(context.Context, int64) error { return boom })
		assert.Equal(t, boom, err)
	})
}
