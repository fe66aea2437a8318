package percolator

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// seed commits key = value for each pair.
func seed(t *testing.T, db *DB, kv ...string) {
	t.Helper()
	tx := db.Begin()
	for i := 0; i < len(kv); i += 2 {
		tx.Set(kv[i], []byte(kv[i+1]))
	}
	_, err := tx.Commit(t.Context())
	require.NoError(t, err)
}

func get(t *testing.T, db *DB, key string) string {
	t.Helper()
	v, ok, err := db.Begin().Get(t.Context(), key)
	require.NoError(t, err)
	if !ok {
		return "(none)"
	}
	return string(v)
}

// The coordinator of a transaction writing a (primary), b and c dies after
// each step in turn. A reader that comes after finds the locks and settles
// them through the primary: before the primary's commit the transaction is
// rolled back (the reader waits out the lock's TTL, 3 s on the fake clock,
// then rolls the primary back), from the primary's commit on it is rolled
// forward at once. Either way every key agrees, and no lock is left.
func TestCrashAtEveryStep(t *testing.T) {
	steps := []struct {
		step    Step
		forward bool
	}{
		{Step{"prewrite", "a", 0}, false},
		{Step{"prewrite", "b", 1}, false},
		{Step{"prewrite", "c", 2}, false},
		{Step{"commit-primary", "a", 0}, true},
		{Step{"commit-secondary", "b", 1}, true},
		{Step{"commit-secondary", "c", 2}, true},
	}
	for _, tt := range steps {
		t.Run(tt.step.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				db := New()
				seed(t, db, "a", "a0", "b", "b0", "c", "c0")
				tx := db.Begin()
				for _, k := range []string{"a", "b", "c"} {
					tx.Set(k, []byte(k+"1"))
				}
				var crashedAt []Step
				tx.Crash = func(s Step) bool {
					crashedAt = append(crashedAt, s)
					return s == tt.step
				}
				_, err := tx.Commit(t.Context())
				require.ErrorIs(t, err, ErrCrashed)
				require.Equal(t, tt.step, crashedAt[len(crashedAt)-1])

				want, wait := "0", 3*time.Second
				if tt.forward {
					want, wait = "1", 0
				}
				t0 := time.Now()
				for _, k := range []string{"c", "b", "a"} { // a secondary first: it must ask the primary
					assert.Equal(t, k+want, get(t, db, k))
				}
				assert.GreaterOrEqual(t, time.Since(t0), wait, "a live-looking lock is waited out; a committed primary is not")
				assert.Less(t, time.Since(t0), wait+time.Second)
				assert.Zero(t, db.Store.Locks(), "every lock settled")
				if !tt.forward {
					// The coordinator wakes up and carries on: its primary was
					// rolled back under it, so its commit fails.
					err := db.Store.commit("a", tx.StartTS, db.Oracle.Next())
					assert.ErrorIs(t, err, ErrAborted)
					assert.Equal(t, "a0", get(t, db, "a"))
				}
			})
		})
	}
}

// The article describes the two phases and "asynchronously: clean up
// secondary locks", and nothing of what a reader does when it meets a lock.
// A reader that passes over locks and reads the newest committed version,
// which the description allows, sees half a transaction when the coordinator
// dies after committing the primary: a new, b old. Check counts it, in a
// random history of one worker: its counts are fixed by the seed (4 partial,
// 48 stale of 200). With 4 workers they depend on the interleaving, and 1
// run in 30 of make test saw 0 and 0.
func TestArticleReadersThatDoNotResolveLocksSeePartialTransactions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := New()
		seed(t, db, "a", "a0", "b", "b0")
		tx := db.Begin()
		tx.Set("a", []byte("a1"))
		tx.Set("b", []byte("b1"))
		tx.Crash = func(s Step) bool { return s.Phase == "commit-primary" }
		_, err := tx.Commit(t.Context())
		require.ErrorIs(t, err, ErrCrashed)

		db.SkipLocks = true
		assert.Equal(t, "a1", get(t, db, "a"), "the primary is committed")
		assert.Equal(t, "b0", get(t, db, "b"), "the secondary's lock is passed over: the old value")

		recs := Random(t.Context(), db, 1, 200, 6, 0.3, 1)
		rep, err := Check(t.Context(), &DB{Store: db.Store, Oracle: db.Oracle, TTL: db.TTL}, recs)
		require.NoError(t, err)
		assert.False(t, rep.OK(), "a history with lock-skipping readers fails the check: %+v", rep)
		assert.Positive(t, rep.Partial+rep.Stale)
		t.Logf("lock-skipping readers: partial %d, stale %d of %d transactions", rep.Partial, rep.Stale, rep.Transactions)
	})
}

// Random histories: 8 workers, 800 transactions over 10 keys, a fifth of the
// coordinators killed at a random step. Every read is its snapshot's value,
// no reader sees part of a transaction, first committer wins, and the final
// state is the last committed write of every key.
func TestRandomHistories(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				db := New()
				recs := Random(t.Context(), db, 8, 800, 10, 0.2, seed)
				rep, err := Check(t.Context(), db, recs)
				require.NoError(t, err)
				assert.True(t, rep.OK(), "%+v", rep)
				assert.Equal(t, 800, rep.Transactions)
				assert.Positive(t, rep.Crashed)
				assert.Positive(t, rep.Committed)
				assert.Zero(t, db.Store.Locks(), "Check read every key: no lock left")
				t.Logf("%d transactions, %d committed, %d coordinators killed; partial %d, stale %d, lost updates %d",
					rep.Transactions, rep.Committed, rep.Crashed, rep.Partial, rep.Stale, rep.LostUpdates)
			})
		})
	}
}

// Snapshot isolation prevents lost updates: two transactions read x = 0 and
// write x + 1; the second to commit finds the first's write after its start
// and fails. Ten goroutines that each add one, retrying on conflict, end at 10.
func TestLostUpdatePrevented(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := New()
		seed(t, db, "x", "0")
		t1, t2 := db.Begin(), db.Begin()
		for _, tx := range []*Txn{t1, t2} {
			v, _, err := tx.Get(t.Context(), "x")
			require.NoError(t, err)
			require.Equal(t, "0", string(v))
			tx.Set("x", []byte("1"))
		}
		_, err := t1.Commit(t.Context())
		require.NoError(t, err)
		_, err = t2.Commit(t.Context())
		assert.ErrorIs(t, err, ErrWriteConflict)
		assert.Equal(t, "1", get(t, db, "x"))

		seed(t, db, "n", "0")
		done := make(chan error, 10)
		for range 10 {
			go func() {
				for {
					tx := db.Begin()
					v, _, err := tx.Get(context.Background(), "n")
					if err != nil {
						done <- err
						return
					}
					var n int
					if _, err := fmt.Sscan(string(v), &n); err != nil {
						done <- err
						return
					}
					tx.Set("n", []byte(fmt.Sprint(n+1)))
					if _, err := tx.Commit(context.Background()); !errors.Is(err, ErrWriteConflict) {
						done <- err
						return
					}
				}
			}()
		}
		for range 10 {
			require.NoError(t, <-done)
		}
		assert.Equal(t, "10", get(t, db, "n"))
	})
}

// Snapshot isolation allows write skew (as TiDB's default isolation does):
// two doctors on call, each transaction checks that the other is on call and
// takes itself off; their writes do not overlap, both commit, nobody is on
// call. Writing the key read as well (SELECT … FOR UPDATE) makes them
// conflict, and one fails.
func TestWriteSkewAllowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, lockReads := range []bool{false, true} {
			db := New()
			seed(t, db, "alice", "on", "bob", "on")
			t1, t2 := db.Begin(), db.Begin()
			for _, c := range []struct {
				tx          *Txn
				self, other string
			}{{t1, "alice", "bob"}, {t2, "bob", "alice"}} {
				v, _, err := c.tx.Get(t.Context(), c.other)
				require.NoError(t, err)
				require.Equal(t, "on", string(v))
				c.tx.Set(c.self, []byte("off"))
				if lockReads {
					c.tx.Set(c.other, v) // the read key written back: a conflict point
				}
			}
			_, err1 := t1.Commit(t.Context())
			_, err2 := t2.Commit(t.Context())
			if !lockReads {
				assert.NoError(t, err1)
				assert.NoError(t, err2)
				assert.Equal(t, []string{"off", "off"}, []string{get(t, db, "alice"), get(t, db, "bob")}, "write skew: nobody on call")
				continue
			}
			assert.NoError(t, err1)
			assert.ErrorIs(t, err2, ErrWriteConflict)
			assert.Equal(t, []string{"off", "on"}, []string{get(t, db, "alice"), get(t, db, "bob")})
		}
	})
}

// A commit is four round trips one after another: start_ts from the oracle,
// the prewrites (sent at once), commit_ts, the primary's commit. A single
// database commits in one.
func TestCommitRoundTrips(t *testing.T) {
	db := New()
	tx := db.Begin()
	for _, k := range []string{"a", "b", "c"} {
		tx.Set(k, []byte("v"))
	}
	_, err := tx.Commit(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 4, tx.Trips)
}
