package experiment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part03-caching/patterns"
)

// WriteRow is one write pattern's measured behaviour.
type WriteRow struct {
	Pattern    string
	Writes     int
	WriteP50   time.Duration
	DBWrites   int64 // round trips that wrote the database (a batch counts once)
	ReadsToDB  int64 // of the reads right after the writes, how many reached the database
	CrashLost  int   // write-behind only: writes lost when the process died
	CloseLost  int   // write-behind only: writes lost on a clean shutdown
	LossWindow int   // write-behind only: MaxPending
}

// PatternsReport is the outcome of RunPatterns.
type PatternsReport struct {
	Writes        []WriteRow
	ColdReaders   int   // concurrent readers of one uncached key, read-through
	ColdDBReads   int64 // database reads they caused
	NegLookups    int   // lookups of an absent ID
	NegDBReads    int64 // database reads with negative caching
	NegDBReadsOff int64 // and without
}

type counter interface {
	Count(ctx context.Context, prefix string) (int, error)
}

// RunPatterns writes n new products through each write pattern, reads them back, and
// counts what reached the database; then shows read-through coalescing and negative
// caching.
func (e *Env) RunPatterns(ctx context.Context, n int) (PatternsReport, error) {
	var rep PatternsReport
	cfg := func(name string) patterns.Config {
		return patterns.Config{Redis: e.Redis, Prefix: e.Prefix + "patterns:" + name + ":", TTL: 5 * time.Minute}
	}
	id := func(name string, i int) string { return fmt.Sprintf("%s%s-%d", e.Prefix, name, i) }
	product := func(name string, i int) patterns.Product {
		return patterns.Product{ID: id(name, i), Name: "item", PriceCents: int64(100 + i)}
	}

	type writer struct {
		name  string
		write func(*patterns.CountingStore) (put func(context.Context, patterns.Product) error, get func(context.Context, string) (patterns.Product, error))
	}
	writers := []writer{
		{"cache-aside", func(db *patterns.CountingStore) (func(context.Context, patterns.Product) error, func(context.Context, string) (patterns.Product, error)) {
			a := patterns.NewCacheAside(cfg("cache-aside"), db)
			return func(ctx context.Context, p patterns.Product) error { _, err := a.Update(ctx, p); return err }, a.Get
		}},
		{"write-through", func(db *patterns.CountingStore) (func(context.Context, patterns.Product) error, func(context.Context, string) (patterns.Product, error)) {
			w := patterns.NewWriteThrough(cfg("write-through"), db)
			return func(ctx context.Context, p patterns.Product) error { _, err := w.Put(ctx, p); return err }, w.Get
		}},
		{"write-around", func(db *patterns.CountingStore) (func(context.Context, patterns.Product) error, func(context.Context, string) (patterns.Product, error)) {
			w := patterns.NewWriteAround(cfg("write-around"), db)
			return func(ctx context.Context, p patterns.Product) error { _, err := w.Put(ctx, p); return err }, w.Get
		}},
	}
	for _, w := range writers {
		db := &patterns.CountingStore{Store: e.Store}
		put, get := w.write(db)
		row := WriteRow{Pattern: w.name, Writes: n}
		var err error
		if row.WriteP50, err = timeWrites(ctx, n, func(i int) error { return put(ctx, product(w.name, i)) }); err != nil {
			return rep, fmt.Errorf("%s: %w", w.name, err)
		}
		row.DBWrites = db.Puts.Load() + db.Batches.Load()
		reads0 := db.Gets.Load()
		for i := range n {
			if _, err := get(ctx, id(w.name, i)); err != nil {
				return rep, fmt.Errorf("%s read: %w", w.name, err)
			}
		}
		row.ReadsToDB = db.Gets.Load() - reads0
		rep.Writes = append(rep.Writes, row)
	}

	wb, err := e.writeBehind(ctx, n, cfg, product)
	if err != nil {
		return rep, err
	}
	rep.Writes = slices.Insert(rep.Writes, 2, wb) // the article's order: aside, through, behind, around

	// Read-through: many concurrent readers of one cold key.
	rep.ColdReaders = 200
	db := &patterns.CountingStore{Store: e.Store}
	if _, err := e.Store.Put(ctx, product("cold", 0)); err != nil {
		return rep, err
	}
	rt := patterns.NewReadThrough(cfg("read-through"), db.Get, 0)
	var wg sync.WaitGroup
	errs := make(chan error, rep.ColdReaders)
	for range rep.ColdReaders {
		wg.Go(func() {
			if _, err := rt.Get(ctx, id("cold", 0)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return rep, err
	}
	rep.ColdDBReads = db.Gets.Load()

	// Negative caching: lookups of an ID that does not exist.
	rep.NegLookups = n
	for _, neg := range []time.Duration{0, -1} {
		db := &patterns.CountingStore{Store: e.Store}
		c := cfg(fmt.Sprintf("negative%d", neg))
		c.NegativeTTL = neg
		a := patterns.NewCacheAside(c, db)
		for range n {
			if _, err := a.Get(ctx, id("absent", 0)); !errors.Is(err, patterns.ErrNotFound) {
				return rep, fmt.Errorf("absent lookup: %v", err)
			}
		}
		if neg == 0 {
			rep.NegDBReads = db.Gets.Load()
		} else {
			rep.NegDBReadsOff = db.Gets.Load()
		}
	}
	return rep, nil
}

func (e *Env) writeBehind(ctx context.Context, n int, cfg func(string) patterns.Config, product func(string, int) patterns.Product) (WriteRow, error) {
	const window = 64
	row := WriteRow{Pattern: "write-behind", Writes: n, LossWindow: window}
	db := &patterns.CountingStore{Store: e.Store}
	opts := patterns.WriteBehindOptions{FlushInterval: 100 * time.Millisecond, MaxPending: window}
	w := patterns.NewWriteBehind(cfg("write-behind"), db, opts)
	var err error
	if row.WriteP50, err = timeWrites(ctx, n, func(i int) error { return w.Put(ctx, product("wb-crash", i)) }); err != nil {
		return row, err
	}
	for i := range n {
		if _, err := w.Get(ctx, product("wb-crash", i).ID); err != nil {
			return row, err
		}
	}
	row.ReadsToDB = db.Gets.Load()
	row.CrashLost = w.Crash()
	row.DBWrites = db.Puts.Load() + db.Batches.Load()
	rows, err := e.Store.(counter).Count(ctx, e.Prefix+"wb-crash-")
	if err != nil {
		return row, err
	}
	if rows+row.CrashLost != n {
		return row, fmt.Errorf("write-behind: %d rows + %d lost != %d writes", rows, row.CrashLost, n)
	}

	w = patterns.NewWriteBehind(cfg("write-behind"), db, opts)
	for i := range n {
		if err := w.Put(ctx, product("wb-clean", i)); err != nil {
			return row, err
		}
	}
	if err := w.Close(ctx); err != nil {
		return row, err
	}
	rows, err = e.Store.(counter).Count(ctx, e.Prefix+"wb-clean-")
	row.CloseLost = n - rows
	return row, err
}

func timeWrites(ctx context.Context, n int, write func(i int) error) (time.Duration, error) {
	lat := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if err := write(i); err != nil {
			return 0, err
		}
		lat[i] = time.Since(start)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	slices.Sort(lat)
	return lat[n/2], nil
}
