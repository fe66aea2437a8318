package patterns

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestWriteBehindCoalescesWritesToOneKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: time.Hour})
	t.Cleanup(func() { _ = w.Close(ctx) })
	for i := range 100 {
		if err := w.Put(ctx, Product{ID: "views", Name: "counter", PriceCents: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if b, rows := e.db.Batches.Load(), e.db.BatchRows.Load(); b != 1 || rows != 1 {
		t.Fatalf("batches=%d rows=%d, want 100 writes coalesced into 1 row", b, rows)
	}
	if p, _ := e.mem.Get(ctx, "views"); p.PriceCents != 99 {
		t.Fatalf("stored %+v, want the last write", p)
	}
}

func TestWriteBehindCleanShutdownLosesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: time.Hour, MaxPending: 64})
	const n = 1000
	for i := range n {
		if err := w.Put(ctx, Product{ID: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.mem.Count(ctx, "p"); got != n {
		t.Fatalf("rows = %d after Close, want %d", got, n)
	}
	if err := w.Put(ctx, Product{ID: "late"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
}

// TestWriteBehindCrashLosesAtMostTheWindow: with no timed flush, the buffer is
// flushed each time it fills, so after 1000 writes with MaxPending 64 exactly
// 1000 mod 64 = 40 writes are buffered, and a crash loses those and no more.
func TestWriteBehindCrashLosesAtMostTheWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n, window = 1000, 64
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: time.Hour, MaxPending: window})
	for i := range n {
		if err := w.Put(ctx, Product{ID: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
		if p := w.Stats().Pending; p > window {
			t.Fatalf("%d writes pending, window is %d", p, window)
		}
	}
	lost := w.Crash()
	rows, _ := e.mem.Count(ctx, "p")
	if rows+lost != n {
		t.Fatalf("rows %d + lost %d != %d writes", rows, lost, n)
	}
	if lost > window || lost != n%window {
		t.Fatalf("lost %d, want %d (≤ window %d)", lost, n%window, window)
	}
}

func TestWriteBehindFlushesWithinTheInterval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: 20 * time.Millisecond})
	t.Cleanup(func() { _ = w.Close(ctx) })
	for i := range 10 {
		if err := w.Put(ctx, Product{ID: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second) // generous: the claim is "flushed by the ticker", not how fast
	for {
		if n, _ := e.mem.Count(ctx, "p"); n == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ticker never flushed the buffer")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWriteBehindBlocksWhenFullAndRetriesNewest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var flushErrs []error
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{
		FlushInterval: 10 * time.Millisecond, MaxPending: 10,
		OnFlushError: func(err error) { flushErrs = append(flushErrs, err) },
	})
	e.mem.SetFailing(true)
	for i := range 10 {
		if err := w.Put(ctx, Product{ID: fmt.Sprint("p", i), PriceCents: 1}); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := w.Put(short, Product{ID: "p10"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("11th Put with the database down = %v, want it to block until its deadline", err)
	}
	// Overwriting a buffered key needs no room, and must win over the failed batch.
	if err := w.Put(ctx, Product{ID: "p3", PriceCents: 2}); err != nil {
		t.Fatal(err)
	}
	if p, err := w.Get(ctx, "p3"); err != nil || p.PriceCents != 2 {
		t.Fatalf("read-your-writes: %+v, %v", p, err)
	}
	e.mem.SetFailing(false)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.mem.Get(ctx, "p3"); p.PriceCents != 2 {
		t.Fatalf("stored p3 = %+v, want the newest write", p)
	}
	if n, _ := e.mem.Count(ctx, "p"); n != 10 {
		t.Fatalf("rows = %d, want 10", n)
	}
	if w.Stats().FlushErrors == 0 || len(flushErrs) == 0 {
		t.Fatal("flush errors were not counted and reported")
	}
}

func TestWriteBehindReadsBufferThenCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: time.Hour})
	if err := w.Put(ctx, Product{ID: "p", Name: "fresh"}); err != nil {
		t.Fatal(err)
	}
	if c, ok := e.cached(t, "p"); !ok || c.Name != "fresh" {
		t.Fatalf("cache = %+v, %v: other instances read the cache before the flush", c, ok)
	}
	if p, err := w.Get(ctx, "p"); err != nil || p.Name != "fresh" {
		t.Fatalf("Get = %+v, %v", p, err)
	}
	if e.db.Gets.Load() != 0 {
		t.Fatal("a buffered write was read from the database")
	}
	if lost := w.Crash(); lost != 1 {
		t.Fatalf("lost = %d", lost)
	}
	if lost := w.Crash(); lost != 0 {
		t.Fatal("a second Crash reported losses")
	}
}
