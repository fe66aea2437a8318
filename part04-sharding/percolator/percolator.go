// Package percolator is a model of the transaction protocol TiDB runs on
// TiKV (Peng and Dabek's Percolator): an MVCC key-value store whose per-key
// operations are atomic (Bigtable's single-row transactions; TiKV's Raft
// groups), a timestamp oracle, and a coordinator that commits in two phases.
//
// Prewrite writes a lock and the data on every key at start_ts; the first key
// is the primary, the others' locks point to it. Commit takes commit_ts, then
// replaces the primary's lock with a write record (commit_ts → start_ts): at
// that moment the transaction is committed. The secondaries are committed
// after, one by one, and may never be if the coordinator dies.
//
// The part the article leaves out is what makes that safe: a reader that
// meets a lock older than its snapshot asks the lock's primary. Primary
// committed: the reader rolls the key forward (writes its commit record).
// Primary rolled back: the reader removes the lock. Primary still locked and
// its TTL past: the coordinator is presumed dead, and the reader rolls the
// primary back first (a rollback record that a late commit or prewrite of the
// primary will find), then the key. Primary locked within its TTL: wait.
// Crash tests put the coordinator's death at every step; Check verifies that
// no history lets a reader see part of a transaction.
package percolator

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Oracle hands out strictly increasing timestamps, a physical part in
// milliseconds and an 18-bit logical counter, as TiDB's PD does.
type Oracle struct {
	mu   sync.Mutex
	last uint64
}

const logicalBits = 18

// Next returns a timestamp above every one returned before.
func (o *Oracle) Next() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last = max(o.last+1, uint64(time.Now().UnixMilli())<<logicalBits)
	return o.last
}

// Physical is the wall time a timestamp was taken at.
func Physical(ts uint64) time.Time { return time.UnixMilli(int64(ts >> logicalBits)) }

type kind uint8

const (
	put kind = iota + 1
	del
	rollback
)

type write struct {
	startTS uint64
	kind    kind
}

type lock struct {
	primary string
	startTS uint64
	ttl     time.Duration
	kind    kind // what the commit record will be: put or del
}

type row struct {
	data   map[uint64][]byte // start_ts → value
	lock   *lock
	writes map[uint64]write // commit_ts → write (a rollback's commit_ts is its start_ts)
}

// Store is the MVCC store. Every method is one atomic step on one key, the
// unit a Bigtable row or a TiKV region gives Percolator.
type Store struct {
	mu   sync.Mutex
	rows map[string]*row
	// Calls counts round trips to the store (one per method call).
	Calls int64
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{rows: map[string]*row{}} }

func (s *Store) row(key string) *row {
	r := s.rows[key]
	if r == nil {
		r = &row{data: map[uint64][]byte{}, writes: map[uint64]write{}}
		s.rows[key] = r
	}
	return r
}

// Errors of the protocol.
var (
	ErrWriteConflict = errors.New("percolator: write conflict: a newer commit or a lock on the key")
	ErrAborted       = errors.New("percolator: transaction rolled back (its primary lock was resolved by a reader)")
	ErrCrashed       = errors.New("percolator: coordinator crashed (test hook)")
)

// prewrite locks key for startTS and stores its value (nil with del for a
// delete). It fails on any lock, any write committed at or after startTS,
// and a rollback record of this very transaction.
func (s *Store) prewrite(key, primary string, startTS uint64, k kind, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls++
	r := s.row(key)
	if r.lock != nil {
		return fmt.Errorf("%w: %q is locked by %d", ErrWriteConflict, key, r.lock.startTS)
	}
	for cts, w := range r.writes {
		if cts >= startTS || (w.kind == rollback && w.startTS == startTS) {
			return fmt.Errorf("%w: %q has a write at %d", ErrWriteConflict, key, cts)
		}
	}
	r.lock = &lock{primary: primary, startTS: startTS, ttl: ttl, kind: k}
	if k == put {
		r.data[startTS] = slices.Clone(value)
	}
	return nil
}

// commit turns key's lock of startTS into a write record at commitTS. It
// fails if the lock is gone (a reader rolled the transaction back) unless the
// key is already committed for startTS (a reader rolled it forward).
func (s *Store) commit(key string, startTS, commitTS uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls++
	r := s.row(key)
	if r.lock == nil || r.lock.startTS != startTS {
		for _, w := range r.writes {
			if w.startTS == startTS && w.kind != rollback {
				return nil // rolled forward already
			}
		}
		return fmt.Errorf("%w: no lock of %d on %q", ErrAborted, startTS, key)
	}
	r.writes[commitTS] = write{startTS: startTS, kind: r.lock.kind}
	r.lock = nil
	return nil
}

// status is what the primary says of the transaction startTS.
type status struct {
	committed uint64 // commit_ts, if committed
	rolled    bool   // rolled back
	locked    *lock  // still locked
}

func (s *Store) status(primary string, startTS uint64) status {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls++
	r := s.row(primary)
	for cts, w := range r.writes {
		if w.startTS == startTS {
			if w.kind == rollback {
				return status{rolled: true}
			}
			return status{committed: cts}
		}
	}
	if r.lock != nil && r.lock.startTS == startTS {
		l := *r.lock
		return status{locked: &l}
	}
	return status{}
}

// rollback removes key's lock of startTS and its data, and leaves a rollback
// record so that a late prewrite or commit of startTS on key fails.
func (s *Store) rollback(key string, startTS uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls++
	r := s.row(key)
	for _, w := range r.writes {
		if w.startTS == startTS && w.kind != rollback {
			return // committed: nothing to roll back
		}
	}
	if r.lock != nil && r.lock.startTS == startTS {
		r.lock = nil
	}
	delete(r.data, startTS)
	r.writes[startTS] = write{startTS: startTS, kind: rollback}
}

// read returns, at snapshot ts, the lock in the way (if any), or the value
// of the newest write committed at or before ts.
func (s *Store) read(key string, ts uint64, skipLocks bool) (value []byte, found bool, blocking *lock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls++
	r := s.rows[key]
	if r == nil {
		return nil, false, nil
	}
	if r.lock != nil && r.lock.startTS <= ts && !skipLocks {
		l := *r.lock
		return nil, false, &l
	}
	var best uint64
	var w write
	for cts, x := range r.writes {
		if cts <= ts && x.kind != rollback && cts >= best {
			best, w = cts, x
		}
	}
	if best == 0 || w.kind == del {
		return nil, false, nil
	}
	return slices.Clone(r.data[w.startTS]), true, nil
}

// Locks counts the locks still in the store.
func (s *Store) Locks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.rows {
		if r.lock != nil {
			n++
		}
	}
	return n
}

// Committed reports whether transaction startTS, whose primary is primary,
// committed, and at which commit_ts.
func (s *Store) Committed(primary string, startTS uint64) (uint64, bool) {
	st := s.status(primary, startTS)
	return st.committed, st.committed != 0
}
