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
// calls that reached the backend and the commands that reached Redis.
func (e *Env) RunStampede(ctx context.Context, cfg StampedeConfig, progress func(string)) ([]StampedeRow, error) {
	cfg.defaults()
	rnd := &lockedRand{r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed+1))}
	xf := &stampede.XFetch{Beta: cfg.Beta, Rand: rnd.Float64}
	store := stampede.RedisStore[string]{Client: e.Redis, Prefix: e.Prefix + "stampede:"}
	timeout := 10 * time.Second

	type strategy struct {
		name  string
		setup func(b *backend) (get func(context.Context) (string, error), done func(), err error)
	}
	loader := func(name string, g *stampede.Group[string], x *stampede.XFetch) strategy {
		return strategy{name, func(b *backend) (func(context.Context) (string, error), func(), error) {
			l := &stampede.Loader[string]{Store: store, TTL: cfg.TTL, Timeout: timeout, Group: g, XFetch: x}
			return func(ctx context.Context) (string, error) { return l.Get(ctx, "product:"+name, b.fetch) }, func() {}, nil
		}}
	}
	strategies := []strategy{
		loader("plain TTL", nil, nil),
		loader("singleflight", &stampede.Group[string]{}, nil),
		loader("XFetch", nil, xf),
		loader("XFetch + singleflight", &stampede.Group[string]{}, xf),
		{fmt.Sprintf("tiered L1 %v + L2 %v", cfg.TTL, 10*cfg.TTL), func(b *backend) (func(context.Context) (string, error), func(), error) {
			c, err := tiered.New(ctx, tiered.Options[string]{
				Redis: e.Redis, Prefix: e.Prefix + "stampede:tiered:",
				Load: func(ctx context.Context, _ string) (string, error) { return b.fetch(ctx) },
				L1:   tiered.LocalOptions{TTL: cfg.TTL}, L2TTL: 10 * cfg.TTL, Timeout: timeout,
			})
			if err != nil {
				return nil, nil, err
			}
			return func(ctx context.Context) (string, error) { return c.Get(ctx, "product:hot") }, func() { _ = c.Close() }, nil
		}},
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

func (e *Env) hotKey(ctx context.Context, cfg StampedeConfig, get func(context.Context) (string, error), b *backend) (StampedeRow, error) {
	if _, err := get(ctx); err != nil { // fill the key; δ is measured here
		return StampedeRow{}, err
	}
	filled := time.Now()
	expiry := filled.Add(cfg.TTL)
	b.calls.Store(0)
	cmds0 := e.Counter.Total()

	var errs atomic.Int64
	var wg sync.WaitGroup
	call := func() time.Duration {
		start := time.Now()
		if _, err := get(ctx); err != nil {
			errs.Add(1)
		}
		return time.Since(start)
	}
	for i := range cfg.Trickle {
		at := filled.Add(time.Duration(i) * cfg.TTL / time.Duration(cfg.Trickle))
		wg.Go(func() {
			time.Sleep(time.Until(at))
			call()
		})
	}
	release := make(chan struct{})
	lat := make([]time.Duration, cfg.Burst)
	for i := range cfg.Burst {
		wg.Go(func() {
			<-release
			lat[i] = call()
		})
	}
	time.Sleep(time.Until(expiry.Add(2 * time.Millisecond)))
	close(release)
	wg.Wait()

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
