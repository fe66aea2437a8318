package percolator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Step is a point in a commit where a test can make the coordinator die.
type Step struct {
	Phase string // "prewrite", "commit-primary", "commit-secondary"
	Key   string // the key the step just wrote
	Index int    // its position in the transaction's keys (0 is the primary)
}

func (s Step) String() string { return fmt.Sprintf("after %s of %q (key %d)", s.Phase, s.Key, s.Index) }

// DB is the store and the oracle, with the knobs a test turns.
type DB struct {
	Store  *Store
	Oracle *Oracle
	// TTL is how long a lock protects a coordinator that may still be alive
	// (TiKV's default is 3 s).
	TTL time.Duration
	// SkipLocks makes readers ignore locks and read the newest committed
	// version, as the article's two-phase description, which says nothing
	// about readers, would allow. Wrong: see Check.
	SkipLocks bool
}

// New returns a DB with an empty store and a 3 s lock TTL.
func New() *DB { return &DB{Store: NewStore(), Oracle: &Oracle{}, TTL: 3 * time.Second} }

// Txn is one transaction: reads at its start_ts, buffered writes, Commit.
type Txn struct {
	db      *DB
	StartTS uint64
	writes  map[string]mutation
	order   []string
	// Crash, if set, is asked after every commit step; true kills the
	// coordinator there: Commit returns ErrCrashed and does nothing more.
	Crash func(Step) bool
	// Trips counts the round trips that follow one another in Commit (a
	// prewrite of every key is one: TiKV sends them in parallel).
	Trips int
}

type mutation struct {
	kind  kind
	value []byte
}

// Begin starts a transaction at a fresh start_ts.
func (db *DB) Begin() *Txn {
	return &Txn{db: db, StartTS: db.Oracle.Next(), writes: map[string]mutation{}}
}

// Set buffers key = value.
func (t *Txn) Set(key string, value []byte) { t.buffer(key, mutation{put, append([]byte{}, value...)}) }

// Delete buffers the removal of key.
func (t *Txn) Delete(key string) { t.buffer(key, mutation{kind: del}) }

func (t *Txn) buffer(key string, m mutation) {
	if _, ok := t.writes[key]; !ok {
		t.order = append(t.order, key)
	}
	t.writes[key] = m
}

// Get reads key at the transaction's snapshot (its own buffered writes
// first), resolving any lock in the way; it waits for a live lock until ctx
// ends.
func (t *Txn) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if m, ok := t.writes[key]; ok {
		return slices.Clone(m.value), m.kind == put, nil
	}
	return t.db.read(ctx, key, t.StartTS)
}

func (db *DB) read(ctx context.Context, key string, ts uint64) ([]byte, bool, error) {
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		v, ok, l := db.Store.read(key, ts, db.SkipLocks)
		if l == nil {
			return v, ok, nil
		}
		done, err := db.resolve(key, l)
		if err != nil {
			return nil, false, err
		}
		if done {
			continue
		}
		select { // a live transaction's lock: wait for it to finish or expire
		case <-ctx.Done():
			return nil, false, fmt.Errorf("percolator: read %q: waiting for the lock of %d: %w", key, l.startTS, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// resolve settles key's lock l through its primary and reports whether it is
// gone (false: the owner may be alive, wait).
func (db *DB) resolve(key string, l *lock) (bool, error) {
	st := db.Store.status(l.primary, l.startTS)
	switch {
	case st.committed != 0:
		if err := db.Store.commit(key, l.startTS, st.committed); err != nil && !errors.Is(err, ErrAborted) {
			return false, err
		}
		return true, nil // rolled forward
	case st.rolled:
		db.Store.rollback(key, l.startTS)
		return true, nil
	case st.locked != nil && time.Since(Physical(l.startTS)) < st.locked.ttl:
		return false, nil
	}
	// The primary's lock expired, or was never written: the coordinator is
	// presumed dead. Roll the primary back first: it decides the transaction.
	db.Store.rollback(l.primary, l.startTS)
	if key != l.primary {
		// The primary may have committed between status and rollback:
		// rollback leaves a committed primary alone, so ask again.
		return db.resolve(key, l)
	}
	return true, nil
}

// Commit runs the two phases. The first key written is the primary.
func (t *Txn) Commit(_ context.Context) (uint64, error) {
	if len(t.order) == 0 {
		return t.StartTS, nil
	}
	primary := t.order[0]
	t.Trips++ // start_ts came from the oracle
	t.Trips++ // prewrite: every key at once
	for i, k := range t.order {
		m := t.writes[k]
		if err := t.db.Store.prewrite(k, primary, t.StartTS, m.kind, m.value, t.db.TTL); err != nil {
			for _, done := range t.order[:i] { // the article's "roll back all acquired locks"
				t.db.Store.rollback(done, t.StartTS)
			}
			return 0, err
		}
		if t.crash(Step{"prewrite", k, i}) {
			return 0, ErrCrashed
		}
	}
	commitTS := t.db.Oracle.Next()
	t.Trips++ // commit_ts
	t.Trips++ // commit the primary
	if err := t.db.Store.commit(primary, t.StartTS, commitTS); err != nil {
		for _, k := range t.order[1:] {
			t.db.Store.rollback(k, t.StartTS)
		}
		return 0, err
	}
	// Committed. The secondaries follow; TiKV commits them in the
	// background, the client already has its answer.
	if t.crash(Step{"commit-primary", primary, 0}) {
		return 0, ErrCrashed
	}
	for i, k := range t.order[1:] {
		if err := t.db.Store.commit(k, t.StartTS, commitTS); err != nil {
			return commitTS, fmt.Errorf("percolator: committed at %d, secondary %q: %w", commitTS, k, err)
		}
		if t.crash(Step{"commit-secondary", k, i + 1}) {
			return 0, ErrCrashed
		}
	}
	return commitTS, nil
}

func (t *Txn) crash(s Step) bool { return t.Crash != nil && t.Crash(s) }

// Keys returns the keys the transaction writes, the primary first.
func (t *Txn) Keys() []string { return slices.Clone(t.order) }
