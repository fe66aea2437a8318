package experiment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part03-caching/stampede"
	"github.com/sysdesign-masterclass/golang/part03-caching/tiered"
)

// StampedeConfig shapes the hot-key experiment.
type StampedeConfig struct {
	Burst          int           // concurrent requests released at the moment of expiry (default 1000)
	Trickle        int           // requests spread evenly over the TTL before it: the hot key's normal traffic (default 200)
	TTL            time.Duration // logical TTL of the hot key (default 500 ms)
	BackendLatency time.Duration // how long one recompute takes: XFetch's δ (default 50 ms)
	Beta           float64       // XFetch β (default 1)
	Seed           uint64        // seeds XFetch's draws (default 1)
	Pods           int           // instances sharing Redis in the last two rows (default 4)
}

func (c *StampedeConfig) defaults() {
	if c.Burst <= 0 {
		c.Burst = 1000
	}
	if c.Trickle < 0 {
		c.Trickle = 0
	} else if c.Trickle == 0 {
		c.Trickle = 200
	}
	if c.TTL <= 0 {
		c.TTL = 500 * time.Millisecond
	}
	if c.BackendLatency <= 0 {
		c.BackendLatency = 50 * time.Millisecond
	}
	if c.Beta <= 0 {
		c.Beta = 1
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Pods <= 0 {
		c.Pods = 4
	}
}

// StampedeRow is one strategy's outcome.
type StampedeRow struct {
	Name               string
	Requests           int
	BackendCalls       int64
	RedisCommands      int64
	BurstP50, BurstP99 time.Duration
	Errors             int64
}

// backend is the slow system of record behind the hot key.
type backend struct {
	latency time.Duration
	calls   atomic.Int64
}

func (b *backend) fetch(ctx context.Context) (string, error) {
	b.calls.Add(1)
	t := time.NewTimer(b.latency)
	defer t.Stop()
	select {
	case <-t.C:
		return "hot product page", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// lockedRand makes a seeded source safe for concurrent draws.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// RunStampede fills one hot key per strategy, sends Trickle requests spread over its
// TTL, then releases Burst concurrent requests the instant it expires, and counts the
// calls that reached the backend and the commands that reached Redis. Every strategy
// keeps the value in Redis for the same TTL, so the rows compare like for like. The
// last two rows spread the requests over Pods instances that share Redis, each with
// its own singleflight Group, without and with the cross-process Redis lock.
func (e *Env) RunStampede(ctx context.Context, cfg StampedeConfig, progress func(string)) ([]StampedeRow, error) {
	cfg.defaults()
	rnd := &lockedRand{r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed+1))}
	xf := &stampede.XFetch{Beta: cfg.Beta, Rand: rnd.Float64}
	timeout := 10 * time.Second

	// getter serves request i (pods take requests round-robin).
	type getter func(ctx context.Context, i int) (string, error)
	type strategy struct {
		name  string
		setup func(b *backend) (getter, func(), error)
	}
	loaders := func(name string, pods int, group, lock bool, x *stampede.XFetch) strategy {
		return strategy{name, func(b *backend) (getter, func(), error) {
			store := stampede.RedisStore[string]{Client: e.Redis, Prefix: e.Prefix + "stampede:"}
			ls := make([]*stampede.Loader[string], pods)
			for i := range ls {
				ls[i] = &stampede.Loader[string]{Store: store, TTL: cfg.TTL, Timeout: timeout, XFetch: x}
				if group {
					ls[i].Group = &stampede.Group[string]{}
				}
				if lock {
					ls[i].Lock = &stampede.RedisLock{Client: e.Redis, Prefix: e.Prefix + "stampede:lock:", Wait: timeout}
				}
			}
			key := "product:" + name
			return func(ctx context.Context, i int) (string, error) { return ls[i%pods].Get(ctx, key, b.fetch) }, func() {}, nil
		}}
	}
	strategies := []strategy{
		loaders("plain TTL", 1, false, false, nil),
		loaders("singleflight", 1, true, false, nil),
		loaders("XFetch", 1, false, false, xf),
		loaders("XFetch + singleflight", 1, true, false, xf),
		{fmt.Sprintf("tiered: L1 + L2, both %v", cfg.TTL), func(b *backend) (getter, func(), error) {
			c, err := tiered.New(ctx, tiered.Options[string]{
				Redis: e.Redis, Prefix: e.Prefix + "stampede:tiered:",
				Load: func(ctx context.Context, _ string) (string, error) { return b.fetch(ctx) },
				L1:   tiered.LocalOptions{TTL: cfg.TTL}, L2TTL: cfg.TTL, Timeout: timeout,
			})
			if err != nil {
				return nil, nil, err
			}
			return func(ctx context.Context, _ int) (string, error) { return c.Get(ctx, "product:hot") }, func() { _ = c.Close() }, nil
		}},
		loaders(fmt.Sprintf("%d pods, singleflight each", cfg.Pods), cfg.Pods, true, false, nil),
		loaders(fmt.Sprintf("%d pods, singleflight + Redis lock", cfg.Pods), cfg.Pods, true, true, nil),
	}

	var rows []StampedeRow
	for _, s := range strategies {
		if progress != nil {
			progress(s.name)
		}
		b := &backend{latency: cfg.BackendLatency}
		get, done, err := s.setup(b)
		if err != nil {
			return nil, err
		}
		row, err := e.hotKey(ctx, cfg, get, b)
		done()
		if err != nil {
			return nil, err
		}
		row.Name = s.name
		rows = append(rows, row)
	}
	return rows, nil
}

// sleepUntil waits until t or the end of ctx.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		return nil
	}
}

func (e *Env) hotKey(ctx context.Context, cfg StampedeConfig, get func(context.Context, int) (string, error), b *backend) (StampedeRow, error) {
	if _, err := get(ctx, 0); err != nil { // fill the key; δ is measured here
		return StampedeRow{}, err
	}
	filled := time.Now()
	expiry := filled.Add(cfg.TTL)
	b.calls.Store(0)
	cmds0 := e.Counter.Total()

	var errs atomic.Int64
	var wg sync.WaitGroup
	call := func(i int) time.Duration {
		start := time.Now()
		if _, err := get(ctx, i); err != nil {
			errs.Add(1)
		}
		return time.Since(start)
	}
	for i := range cfg.Trickle {
		at := filled.Add(time.Duration(i) * cfg.TTL / time.Duration(cfg.Trickle))
		wg.Go(func() {
			if sleepUntil(ctx, at) == nil {
				call(i)
			}
		})
	}
	release := make(chan struct{})
	lat := make([]time.Duration, cfg.Burst)
	for i := range cfg.Burst {
		wg.Go(func() {
			<-release
			lat[i] = call(i)
		})
	}
	err := sleepUntil(ctx, expiry.Add(2*time.Millisecond))
	close(release)
	wg.Wait()
	if err != nil {
		return StampedeRow{}, err
	}
	if err := context.Cause(ctx); err != nil {
		return StampedeRow{}, err
	}

	slices.Sort(lat)
	return StampedeRow{
		Requests:      cfg.Trickle + cfg.Burst,
		BackendCalls:  b.calls.Load(),
		RedisCommands: e.Counter.Total() - cmds0,
		BurstP50:      lat[len(lat)/2],
		BurstP99:      lat[len(lat)*99/100],
		Errors:        errs.Load(),
	}, nil
}
