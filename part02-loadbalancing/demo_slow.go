package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/sim"
)

// slowDemo runs the slow-backend experiment twice: simulated (exact,
// repeatable) and on loopback (real proxy, real sleeps).
func slowDemo(ctx context.Context, w io.Writer, o options) error {
	cfg := sim.Default
	fmt.Fprintf(w, "== One slow backend among %d: %d workers each, %v per request, one %gx slower, offered %.0f%% of the fleet's capacity ==\n",
		cfg.Backends, cfg.Workers, cfg.Service, cfg.SlowFactor, 100*cfg.Load)
	fmt.Fprintf(w, "simulated (Poisson arrivals, exponential service times, %s requests, seed %d; the article: round robin's \"long-tail requests monopolize nodes\"):\n",
		thousands(cfg.Requests), cfg.Seed)
	tw := table(w)
	fmt.Fprintln(tw, "load\talgorithm\tp50\tp99\tp99.9\tshare to the slow backend")
	var curves []sim.Curve
	colors := []string{"#d62728", "#7f7f7f", "#1f77b4", "#2ca02c"}
	for _, load := range []float64{cfg.Load, 0.3} {
		c := cfg
		c.Load = load
		for i, a := range sim.Algorithms {
			r, err := sim.Run(c, a)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%.0f%%\t%s\t%s\t%s\t%s\t%s\n", 100*load, a.Name, ms(r.Quantile(0.5)), ms(r.Quantile(0.99)), ms(r.Quantile(0.999)), percent(r.Share[len(r.Share)-1]))
			if load == cfg.Load {
				dash := ""
				if a.Weighted {
					dash = "6 4"
				}
				curves = append(curves, sim.Curve{Label: a.Name, Color: colors[i%len(colors)], Dash: dash, Result: r})
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "at 30% load round robin still sends the slow backend a quarter of the traffic, more than it can serve: its queue, and p99, grow for as long as the traffic lasts")
	if o.chart != "" {
		f, err := os.Create(o.chart)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("Latency by percentile, one backend %gx slower among %d, %.0f%% load (simulated)", cfg.SlowFactor, cfg.Backends, 100*cfg.Load)
		if err := sim.WriteChart(f, title, curves); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(w, "chart: %s\n", o.chart)
	}

	fmt.Fprintf(w, "on loopback through the L7 proxy (the same fleet for real: backends that sleep, Poisson arrivals, %s requests per algorithm):\n", thousands(o.requests))
	tw = table(w)
	fmt.Fprintln(tw, "algorithm\tp50\tp99\tshare to the slow backend\tretried")
	for _, a := range sim.Algorithms {
		lat, share, retried, err := loopbackSlow(ctx, cfg, a, o.requests)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Name, err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", a.Name, ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)), percent(share), retried)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// loopbackSlow starts the simulated fleet for real (sleeping backends with
// a worker limit) and offers it Poisson traffic through the L7 proxy. It
// returns the latencies, the share the slow backend served and the
// requests the proxy retried on another backend (a failed connect, which
// also ejects: each moves a request off its algorithm's choice).
func loopbackSlow(ctx context.Context, cfg sim.Config, a sim.Algorithm, n int) ([]time.Duration, float64, int64, error) {
	opts := fleetOf(cfg.Backends, fleet.Options{Delay: cfg.Service, Workers: cfg.Workers, Exponential: true})
	weights := make([]int, cfg.Backends)
	capacity := 0.0
	for i := range opts {
		weights[i] = 1
		if i >= cfg.Backends-cfg.Slow {
			opts[i].Delay = time.Duration(float64(cfg.Service) * cfg.SlowFactor)
		} else if a.Weighted {
			weights[i] = int(cfg.SlowFactor)
		}
		capacity += float64(cfg.Workers) / opts[i].Delay.Seconds()
	}
	pickRng, arrivals := rand.New(rand.NewPCG(cfg.Seed, 2)), rand.New(rand.NewPCG(cfg.Seed, 3))
	l, err := startLab(labConfig{opts: opts, weights: weights, algo: func(bs []*balancer.Backend) balancer.Algorithm { return a.New(pickRng, bs) }})
	if err != nil {
		return nil, 0, 0, err
	}
	defer l.close()
	// Enough idle connections for the deepest queue, so that no connection
	// is closed and redialled mid-run (TIME_WAIT would pile up).
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	rate := cfg.Load * capacity
	lat := make([]time.Duration, n)
	served := make([]string, n)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	next := time.Now()
	for i := range n {
		next = next.Add(time.Duration(arrivals.ExpFloat64() / rate * float64(time.Second)))
		if d := time.Until(next); d > 0 {
			time.Sleep(d) // when behind schedule, send at once: the average rate holds
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			ans, err := send(ctx, client, "GET", l.l7URL+"/", "")
			if err == nil && ans.status != http.StatusOK {
				err = fmt.Errorf("status %d", ans.status)
			}
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			lat[i], served[i] = ans.took, ans.backend
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, 0, 0, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, 0, err
	}
	slow := 0
	for _, b := range served {
		if b == fmt.Sprintf("b%d", cfg.Backends) {
			slow++
		}
	}
	return sorted(lat), float64(slow) / float64(n), l.l7.Stats().Retries, nil
}
