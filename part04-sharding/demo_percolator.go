package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/part04-sharding/percolator"
)

// percolatorDemo kills the coordinator of a three-key transaction after each
// commit step and shows what the next reader finds, then checks random
// histories and the two snapshot-isolation anomalies.
func percolatorDemo(ctx context.Context, w io.Writer, _ options) error {
	fmt.Fprintln(w, "== Percolator (TiDB on TiKV) in memory: the coordinator killed after each step, and what the next reader finds ==")
	const ttl = 100 * time.Millisecond
	fmt.Fprintf(w, "a transaction writes a (its primary), b, c over a0 b0 c0; lock TTL %v here (TiKV's default: 3 s)\n", ttl)
	tw := table(w)
	fmt.Fprintln(tw, "coordinator killed\treader sees\tbecause\treader waited\tlocks left")
	for _, step := range []percolator.Step{
		{Phase: "prewrite", Key: "a", Index: 0}, {Phase: "prewrite", Key: "b", Index: 1}, {Phase: "prewrite", Key: "c", Index: 2},
		{Phase: "commit-primary", Key: "a", Index: 0}, {Phase: "commit-secondary", Key: "b", Index: 1}, {Phase: "commit-secondary", Key: "c", Index: 2},
	} {
		seen, waited, locks, err := crashAfter(ctx, step, ttl, false)
		if err != nil {
			return err
		}
		why := "rolled back: the primary's lock outlived its TTL"
		if step.Phase != "prewrite" {
			why = "rolled forward: the primary is committed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", step, strings.Join(seen, " "), why, ms(waited), locks)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	primary := percolator.Step{Phase: "commit-primary", Key: "a", Index: 0}
	seen, _, _, err := crashAfter(ctx, primary, ttl, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "the same, killed %s, read by a reader that passes over locks (all the article says): %s, part of a transaction\n",
		primary, strings.Join(seen, " "))

	for _, skip := range []bool{false, true} {
		db := percolator.New()
		db.TTL = 20 * time.Millisecond
		db.SkipLocks = skip
		recs := percolator.Random(ctx, db, 8, 400, 10, 0.2, 1)
		db.SkipLocks = false
		rep, err := percolator.Check(ctx, db, recs)
		if err != nil {
			return err
		}
		who := "readers resolve locks through the primary"
		if skip {
			who = "readers pass over locks (all the article says)"
		}
		fmt.Fprintf(w, "random history, %s: %d transactions, %d committed, %d coordinators killed; partial reads %d, stale reads %d, lost updates %d\n",
			who, rep.Transactions, rep.Committed, rep.Crashed, rep.Partial, rep.Stale, rep.LostUpdates)
	}

	db := percolator.New()
	seed := db.Begin()
	seed.Set("x", []byte("0"))
	seed.Set("alice", []byte("on"))
	seed.Set("bob", []byte("on"))
	if _, err := seed.Commit(ctx); err != nil {
		return err
	}
	t1, t2 := db.Begin(), db.Begin()
	t1.Set("x", []byte("1"))
	t2.Set("x", []byte("1"))
	_, err1 := t1.Commit(ctx)
	_, err2 := t2.Commit(ctx)
	fmt.Fprintf(w, "lost update: two transactions read x = 0 and write 1: first %s, second %s\n", outcome(err1), outcome(err2))
	t1, t2 = db.Begin(), db.Begin()
	t1.Set("alice", []byte("off")) // each saw the other on call
	t2.Set("bob", []byte("off"))
	_, err1 = t1.Commit(ctx)
	_, err2 = t2.Commit(ctx)
	fmt.Fprintf(w, "write skew: alice and bob each see the other on call and go off: %s, %s: snapshot isolation allows it\n", outcome(err1), outcome(err2))
	tx := db.Begin()
	tx.Set("a", []byte("1"))
	tx.Set("b", []byte("1"))
	tx.Set("c", []byte("1"))
	if _, err := tx.Commit(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "a commit is %d round trips one after another (start_ts, prewrites in parallel, commit_ts, primary), a single node's is 1\n", tx.Trips)
	return nil
}

func outcome(err error) string {
	if err == nil {
		return "committed"
	}
	if errors.Is(err, percolator.ErrWriteConflict) {
		return "write conflict"
	}
	return err.Error()
}

// crashAfter seeds a0 b0 c0, kills the coordinator of a transaction writing
// a1 b1 c1 after step, and returns what a new reader then reads (a reader
// that passes over locks if skipLocks), how long it waited and the locks left.
func crashAfter(ctx context.Context, step percolator.Step, ttl time.Duration, skipLocks bool) ([]string, time.Duration, int, error) {
	keys := []string{"a", "b", "c"}
	db := percolator.New()
	db.TTL = ttl
	seed := db.Begin()
	for _, k := range keys {
		seed.Set(k, []byte(k+"0"))
	}
	if _, err := seed.Commit(ctx); err != nil {
		return nil, 0, 0, err
	}
	tx := db.Begin()
	for _, k := range keys {
		tx.Set(k, []byte(k+"1"))
	}
	tx.Crash = func(s percolator.Step) bool { return s == step }
	if _, err := tx.Commit(ctx); !errors.Is(err, percolator.ErrCrashed) {
		return nil, 0, 0, fmt.Errorf("commit: %v, want the test crash", err)
	}
	db.SkipLocks = skipLocks
	t0 := time.Now()
	reader := db.Begin()
	var seen []string
	for _, k := range []string{"c", "b", "a"} {
		v, _, err := reader.Get(ctx, k)
		if err != nil {
			return nil, 0, 0, err
		}
		seen = append([]string{string(v)}, seen...)
	}
	return seen, time.Since(t0), db.Store.Locks(), nil
}
