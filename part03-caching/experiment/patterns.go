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

// ArticleLabels is what the article's table of the five patterns says about one.
type ArticleLabels struct {
	Consistency, WriteLatency, LossRisk string
}

// WriteRow is one pattern's measured behaviour, beside the article's labels.
type WriteRow struct {
	Pattern string
	Article ArticleLabels
	Writes  int
	// WriteP50 is the median latency of one Put of a new product.
	WriteP50 time.Duration
	// DBWrites counts the round trips that wrote the database (a batch counts once);
	// RedisCommands the commands sent to Redis, during the writes.
	DBWrites, RedisCommands int64
	// ReadsToDB counts, of the reads right after the writes, those that reached the
	// database.
	ReadsToDB int64
	// StaleReads counts, after every product was read (cached) and then updated,
	// the reads by another instance (another process) that returned the old value.
	StaleReads int
	// CrashLost and CloseLost count acknowledged writes missing from the database
	// after a crash and after a clean shutdown; LossWindow is write-behind's
	// MaxPending (0 for the others, which buffer nothing).
	CrashLost, CloseLost, LossWindow int
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

// lossWindow is write-behind's MaxPending in the tour.
const lossWindow = 64

// contender is one pattern of the tour, with the article's labels for it.
type contender struct {
	name    string
	article ArticleLabels
	open    func(patterns.Config, patterns.Store) patterns.Pattern
}

var contenders = []contender{
	{"cache-aside", ArticleLabels{"Eventual", "Low", "Low"}, func(c patterns.Config, db patterns.Store) patterns.Pattern {
		return patterns.NewCacheAside(c, db)
	}},
	{"read-through", ArticleLabels{"Eventual", "Low", "Low"}, func(c patterns.Config, db patterns.Store) patterns.Pattern {
		return patterns.NewReadThrough(c, db)
	}},
	{"write-through", ArticleLabels{"Strong", "High", "Very Low"}, func(c patterns.Config, db patterns.Store) patterns.Pattern {
		return patterns.NewWriteThrough(c, db)
	}},
	{"write-behind", ArticleLabels{"Eventual", "Very Low", "High"}, func(c patterns.Config, db patterns.Store) patterns.Pattern {
		return patterns.NewWriteBehind(c, db, patterns.WriteBehindOptions{FlushInterval: 100 * time.Millisecond, MaxPending: lossWindow})
	}},
	{"write-around", ArticleLabels{"Strong", "Low", "Low"}, func(c patterns.Config, db patterns.Store) patterns.Pattern {
		return patterns.NewWriteAround(c, db)
	}},
}

type counter interface {
	Count(ctx context.Context, prefix string) (int, error)
}

// RunPatterns writes n new products through each of the five patterns, reads them
// back, updates them and reads them from another instance, and counts what reached
// the database and what a crash and a clean shutdown lose; then it shows read-through
// coalescing and negative caching.
func (e *Env) RunPatterns(ctx context.Context, n int) (PatternsReport, error) {
	var rep PatternsReport
	for _, c := range contenders {
		row, err := e.tourPattern(ctx, c, n)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", c.name, err)
		}
		rep.Writes = append(rep.Writes, row)
	}
	var err error
	rep.ColdReaders = 200
	if rep.ColdDBReads, err = e.coldReaders(ctx, rep.ColdReaders); err != nil {
		return rep, err
	}
	rep.NegLookups = n
	if rep.NegDBReads, err = e.absentLookups(ctx, n, 0); err != nil {
		return rep, err
	}
	rep.NegDBReadsOff, err = e.absentLookups(ctx, n, -1)
	return rep, err
}

func (e *Env) patternConfig(name string) patterns.Config {
	return patterns.Config{Redis: e.Redis, Prefix: e.Prefix + "patterns:" + name + ":", TTL: 5 * time.Minute}
}

// idPrefix namespaces the product IDs of one step of the tour.
func (e *Env) idPrefix(step string) string { return e.Prefix + step + "/" }

func product(prefix string, i int, name string) patterns.Product {
	return patterns.Product{ID: fmt.Sprint(prefix, i), Name: name, PriceCents: int64(100 + i)}
}

func (e *Env) tourPattern(ctx context.Context, c contender, n int) (WriteRow, error) {
	row := WriteRow{Pattern: c.name, Article: c.article, Writes: n}
	db := &patterns.CountingStore{Store: e.Store}
	p := c.open(e.patternConfig(c.name), db)
	other := c.open(e.patternConfig(c.name), db) // another process: same cache and database
	defer func() { _, _ = closePattern(p); _, _ = closePattern(other) }()
	ids := e.idPrefix(c.name)

	cmds := e.Counter.Total()
	var err error
	if row.WriteP50, err = timeWrites(ctx, n, func(i int) error { return p.Put(ctx, product(ids, i, "v1")) }); err != nil {
		return row, err
	}
	row.RedisCommands = e.Counter.Total() - cmds
	row.DBWrites = db.Writes()

	reads := db.Gets.Load()
	if err := readAll(ctx, p, ids, n, nil); err != nil {
		return row, err
	}
	row.ReadsToDB = db.Gets.Load() - reads

	// Consistency: another instance caches every product, then this one updates them.
	if err := readAll(ctx, other, ids, n, nil); err != nil {
		return row, err
	}
	for i := range n {
		if err := p.Put(ctx, product(ids, i, "v2")); err != nil {
			return row, err
		}
	}
	if err := readAll(ctx, other, ids, n, func(got patterns.Product) {
		if got.Name == "v1" {
			row.StaleReads++
		}
	}); err != nil {
		return row, err
	}

	// Loss: what a crash and what a clean shutdown leave out of the database.
	if row.CrashLost, err = e.lossAfter(ctx, c, n, "crash", crash); err != nil {
		return row, err
	}
	if row.CloseLost, err = e.lossAfter(ctx, c, n, "close", closePattern); err != nil {
		return row, err
	}
	if _, ok := p.(*patterns.WriteBehind); ok {
		row.LossWindow = lossWindow
	}
	return row, nil
}

// lossAfter writes n new products through a fresh instance, ends it with end (which
// reports how many writes it lost) and returns how many are missing from the
// database, checking that the two agree. The synchronous patterns acknowledge a
// write once it is in the database: a crash right after the writes loses what is
// not there.
func (e *Env) lossAfter(ctx context.Context, c contender, n int, step string, end func(patterns.Pattern) (int, error)) (int, error) {
	ids := e.idPrefix(c.name + "-" + step)
	p := c.open(e.patternConfig(c.name), e.Store)
	for i := range n {
		if err := p.Put(ctx, product(ids, i, "v1")); err != nil {
			return 0, err
		}
	}
	reported, err := end(p)
	if err != nil {
		return 0, err
	}
	rows, err := e.Store.(counter).Count(ctx, ids)
	if err != nil {
		return 0, err
	}
	if n-rows != reported {
		return 0, fmt.Errorf("%s: %d of %d writes missing from the database, %d reported lost", step, n-rows, n, reported)
	}
	return n - rows, nil
}

// crash ends p as a dying process would.
func crash(p patterns.Pattern) (int, error) {
	if w, ok := p.(*patterns.WriteBehind); ok {
		return w.Crash(), nil
	}
	return 0, nil
}

// closePattern ends p with a clean shutdown.
func closePattern(p patterns.Pattern) (int, error) {
	if w, ok := p.(*patterns.WriteBehind); ok {
		return 0, w.Close(context.Background())
	}
	return 0, nil
}

func readAll(ctx context.Context, p patterns.Pattern, ids string, n int, check func(patterns.Product)) error {
	for i := range n {
		got, err := p.Get(ctx, fmt.Sprint(ids, i))
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		if check != nil {
			check(got)
		}
	}
	return nil
}

// coldReaders starts that many concurrent read-through readers of one uncached key
// and returns the database reads they caused.
func (e *Env) coldReaders(ctx context.Context, readers int) (int64, error) {
	ids := e.idPrefix("cold")
	if _, err := e.Store.Put(ctx, product(ids, 0, "cold")); err != nil {
		return 0, err
	}
	db := &patterns.CountingStore{Store: e.Store}
	rt := patterns.NewReadThrough(e.patternConfig("read-through-cold"), db)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			if _, err := rt.Get(ctx, fmt.Sprint(ids, 0)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return db.Gets.Load(), <-errs
}

// absentLookups looks up an ID that does not exist n times through cache-aside and
// returns the database reads; negativeTTL as in patterns.Config.
func (e *Env) absentLookups(ctx context.Context, n int, negativeTTL time.Duration) (int64, error) {
	db := &patterns.CountingStore{Store: e.Store}
	cfg := e.patternConfig(fmt.Sprint("negative", negativeTTL))
	cfg.NegativeTTL = negativeTTL
	a := patterns.NewCacheAside(cfg, db)
	for range n {
		if _, err := a.Get(ctx, e.idPrefix("absent")+"0"); !errors.Is(err, patterns.ErrNotFound) {
			return 0, fmt.Errorf("absent lookup: %v", err)
		}
	}
	return db.Gets.Load(), nil
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
