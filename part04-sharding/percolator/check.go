package percolator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
)

// Record is one transaction of a history: what it read, what it wrote, how
// its Commit ended.
type Record struct {
	StartTS  uint64
	CommitTS uint64 // from Commit, or found in the store for a crashed coordinator
	Keys     []string
	Reads    map[string]string // key → value read ("" for absent)
	Writes   map[string]string // key → value written ("" for a delete)
	Err      error             // Commit's error
	Crashed  bool              // the test killed the coordinator
}

// Committed reports whether the transaction committed.
func (r Record) Committed() bool { return r.CommitTS != 0 }

// Report is what Check found.
type Report struct {
	Transactions, Committed, Crashed int
	Partial                          int      // reads that saw some of a committed transaction's writes and not others
	Stale                            int      // reads that did not return the snapshot's value
	LostUpdates                      int      // committed pairs writing one key with overlapping lifetimes
	Final                            int      // keys whose final value is not the last committed write
	Examples                         []string // the first few problems
}

// OK reports whether the history is snapshot isolation with atomic visibility.
func (r Report) OK() bool { return r.Partial+r.Stale+r.LostUpdates+r.Final == 0 }

// Random runs txns transactions from workers goroutines over keys keys. Each
// reads two keys and writes one to three (unique values), and with
// probability crash its coordinator dies at a random step of Commit. It
// returns the history, crashed transactions' outcomes looked up in the store.
func Random(ctx context.Context, db *DB, workers, txns, keys int, crash float64, seed uint64) []Record {
	var mu sync.Mutex
	var recs []Record
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range txns / workers {
				r := one(ctx, db, rng, keys, crash, fmt.Sprintf("w%d.%d", w, i))
				mu.Lock()
				recs = append(recs, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := range recs {
		if recs[i].Crashed {
			recs[i].CommitTS, _ = db.Store.Committed(recs[i].Keys[0], recs[i].StartTS)
		}
	}
	return recs
}

func one(ctx context.Context, db *DB, rng *rand.Rand, keys int, crash float64, name string) Record {
	t := db.Begin()
	r := Record{StartTS: t.StartTS, Reads: map[string]string{}, Writes: map[string]string{}}
	key := func() string { return fmt.Sprintf("k%02d", rng.IntN(keys)) }
	for range 2 {
		k := key()
		v, ok, err := t.Get(ctx, k)
		if err != nil {
			r.Err = err
			return r
		}
		if ok {
			r.Reads[k] = string(v)
		} else {
			r.Reads[k] = ""
		}
	}
	for range 1 + rng.IntN(3) {
		k := key()
		if _, dup := r.Writes[k]; dup {
			continue
		}
		if rng.IntN(10) == 0 {
			t.Delete(k)
			r.Writes[k] = ""
		} else {
			v := name + ":" + k
			t.Set(k, []byte(v))
			r.Writes[k] = v
		}
	}
	r.Keys = t.Keys()
	steps := 2 * len(r.Keys) // prewrites, primary commit, secondary commits
	at := -1
	if rng.Float64() < crash {
		at = rng.IntN(steps)
	}
	n := 0
	t.Crash = func(Step) bool { n++; return n-1 == at }
	r.CommitTS, r.Err = t.Commit(ctx)
	r.Crashed = errors.Is(r.Err, ErrCrashed)
	return r
}

// Check verifies a history against the store: every read returns the value
// of the last transaction committed before the reader's start_ts (so no
// reader sees part of a transaction), no two committed transactions with
// overlapping lifetimes wrote one key (first committer wins), and reading
// every key now, every lock resolved, gives the last committed write.
func Check(ctx context.Context, db *DB, recs []Record) (Report, error) {
	rep := Report{Transactions: len(recs)}
	note := func(format string, a ...any) {
		if len(rep.Examples) < 5 {
			rep.Examples = append(rep.Examples, fmt.Sprintf(format, a...))
		}
	}
	var committed []Record
	for _, r := range recs {
		if r.Crashed {
			rep.Crashed++
		}
		if r.Committed() {
			committed = append(committed, r)
		}
	}
	rep.Committed = len(committed)
	slices.SortFunc(committed, func(a, b Record) int { return compare(a.CommitTS, b.CommitTS) })
	// at returns the value of key as of ts, and the transaction that wrote it.
	at := func(key string, ts uint64) (string, *Record) {
		v, by := "", (*Record)(nil)
		for i := range committed {
			c := &committed[i]
			if c.CommitTS > ts {
				break
			}
			if w, ok := c.Writes[key]; ok {
				v, by = w, c
			}
		}
		return v, by
	}
	writer := map[string]*Record{} // values written are unique, deletes aside
	for i := range committed {
		for _, v := range committed[i].Writes {
			if v != "" {
				writer[v] = &committed[i]
			}
		}
	}
	for _, r := range recs {
		for k, got := range r.Reads {
			if want, _ := at(k, r.StartTS); got != want {
				rep.Stale++
				note("txn %d read %s = %q, its snapshot holds %q", r.StartTS, k, got, want)
			}
		}
		for _, w := range committed {
			if seen, missed := visibility(r, w, writer, committed); seen > 0 && missed > 0 {
				rep.Partial++
				note("txn %d saw %d of txn %d's writes and an older value for %d", r.StartTS, seen, w.StartTS, missed)
			}
		}
	}
	for i, a := range committed {
		for _, b := range committed[i+1:] {
			if b.StartTS > a.CommitTS {
				continue // b started after a committed
			}
			for k := range a.Writes {
				if _, ok := b.Writes[k]; ok {
					rep.LostUpdates++
					note("txns %d and %d both committed a write of %s with overlapping lifetimes", a.StartTS, b.StartTS, k)
					break
				}
			}
		}
	}
	now := db.Oracle.Next()
	keys := map[string]bool{}
	for _, r := range recs {
		for k := range r.Writes {
			keys[k] = true
		}
	}
	for k := range keys {
		v, ok, err := db.read(ctx, k, now)
		if err != nil {
			return rep, err
		}
		got := ""
		if ok {
			got = string(v)
		}
		if want, _ := at(k, now); got != want {
			rep.Final++
			note("%s is %q now, the last committed write is %q", k, got, want)
		}
	}
	return rep, nil
}

// visibility counts the keys of w's puts that r read: seen, r read w's
// value; missed, r read something older than w (a value committed before w,
// or nothing where no delete came after w). Reading a newer value is neither.
func visibility(r, w Record, writer map[string]*Record, committed []Record) (seen, missed int) {
	for k, v := range w.Writes {
		got, read := r.Reads[k]
		if !read || v == "" {
			continue
		}
		switch x := writer[got]; {
		case got == v:
			seen++
		case got != "" && x != nil && x.CommitTS < w.CommitTS:
			missed++
		case got == "" && !deletedAfter(committed, k, w.CommitTS):
			missed++
		}
	}
	return seen, missed
}

func deletedAfter(committed []Record, key string, ts uint64) bool {
	for _, c := range committed {
		if v, ok := c.Writes[key]; ok && v == "" && c.CommitTS > ts {
			return true
		}
	}
	return false
}

func compare(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
