package balancer

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Checker probes every backend of a pool at a fixed interval, ejects one
// after Fall failed probes in a row and readmits it after Rise good ones
// (HAProxy's "check inter 2s rise 2 fall 3"). Its verdict and a proxy's
// passive ejection (Pool.Eject) are kept apart: a backend takes requests
// only when neither holds it out. A passing probe lifts a passive ejection
// that began before the probe was sent.
type Checker struct {
	Pool     *Pool
	Probe    func(ctx context.Context, b *Backend) error // nil: HTTPProbe(http.DefaultClient, "/healthz")
	Interval time.Duration                               // 0: 2 s
	Timeout  time.Duration                               // per probe; 0: Interval / 2
	Rise     int                                         // ≤ 0: 2
	Fall     int                                         // ≤ 0: 3
	// OnChange, if set, is called from Run's goroutine after each ejection
	// or readmission the checker makes.
	OnChange func(b *Backend, healthy bool)
}

// HTTPProbe returns a probe that GETs path on the backend and wants a 2xx
// within the probe's deadline: a process that accepts connections but cannot
// serve (a full disk, a dead database) fails it, where a TCP connect would
// pass. The L4 proxy uses it too: L4 balancers are not limited to TCP checks.
func HTTPProbe(client *http.Client, path string) func(context.Context, *Backend) error {
	return func(ctx context.Context, b *Backend) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.Addr+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("health check %s: status %d", b.Name, resp.StatusCode)
		}
		return nil
	}
}

// Run probes until ctx ends. Each round probes all backends concurrently
// and waits for them, so a hung backend delays no other backend's verdict by
// more than Timeout.
func (c *Checker) Run(ctx context.Context) {
	interval := c.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = interval / 2
	}
	rise, fall := c.Rise, c.Fall
	if rise <= 0 {
		rise = 2
	}
	if fall <= 0 {
		fall = 3
	}
	probe := c.Probe
	if probe == nil {
		probe = HTTPProbe(http.DefaultClient, "/healthz")
	}
	backends := c.Pool.Backends()
	type state struct {
		ok, bad int  // consecutive good and failed probes
		up      bool // the checker's verdict
	}
	states := make([]state, len(backends))
	for i, b := range backends {
		states[i].up = !b.down.Load()
	}
	errs := make([]error, len(backends))
	gens := make([]uint64, len(backends))
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		var wg sync.WaitGroup
		for i, b := range backends {
			gens[i] = c.Pool.generation(b)
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				errs[i] = probe(pctx, b)
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
		for i, b := range backends {
			s := &states[i]
			if errs[i] != nil {
				s.ok, s.bad = 0, s.bad+1
			} else {
				s.ok, s.bad = s.ok+1, 0
				// A passing probe lifts a passive ejection (Envoy's
				// successful_active_health_check_uneject_host), if the
				// ejection came before the probe was sent.
				c.Pool.readmitSince(b, gens[i])
			}
			switch {
			case s.up && s.bad >= fall:
				s.up = false
				c.set(b, false)
			case !s.up && s.ok >= rise:
				s.up = true
				c.set(b, true)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (c *Checker) set(b *Backend, healthy bool) {
	if c.Pool.SetHealthy(b, healthy) && c.OnChange != nil {
		c.OnChange(b, healthy)
	}
}
