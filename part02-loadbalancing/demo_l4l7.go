package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
)

// l4l7Clients is the concurrency of the throughput measurements.
const l4l7Clients = 8

// l4l7Demo puts one backend behind both proxies and measures, on loopback,
// the round trip direct, through L4 and through L7, sequentially (latency)
// and with 8 clients (requests/s over keep-alive, and new connections/s);
// then sends 100 KiB responses through L4 and counts the bytes each way.
func l4l7Demo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== L4 vs L7 on loopback: one backend, the same requests direct and through each proxy (%s each) ==\n", thousands(o.requests))
	l, err := startLab(labConfig{opts: fleetOf(1, fleet.Options{}), algo: func([]*balancer.Backend) balancer.Algorithm { return new(balancer.RoundRobin) }, l4: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer l.close()
	paths := []struct{ name, url, says string }{
		{"direct", "http://" + l.fleet[0].Addr() + "/", "-"},
		{"L4 (TCP, splice)", "http://" + l.l4Addr + "/", `"~0.1–0.3ms", "millions of connections/s"`},
		{"L7 (httputil.ReverseProxy)", l.l7URL + "/", `"~0.5–2ms", "hundreds of thousands/s"`},
	}
	tw := table(w)
	fmt.Fprintf(tw, "path\tp50\tp99\tadded p50\trequests/s (%d clients, keep-alive)\tnew connections/s (%d clients)\tthe article says\n", l4l7Clients, l4l7Clients)
	var base time.Duration
	for i, p := range paths {
		lat, err := sequential(ctx, l.client, p.url, o.requests)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		rps, err := throughput(ctx, l.client, p.url, o.requests)
		if err != nil {
			return err
		}
		fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
		cps, err := throughput(ctx, fresh, p.url, max(o.requests/4, 100))
		if err != nil {
			return err
		}
		p50 := quantile(lat, 0.5)
		added := "-"
		if i == 0 {
			base = p50
		} else {
			added = fmt.Sprintf("%+.3f ms", float64(p50-base)/float64(time.Millisecond))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.name, ms(p50), ms(quantile(lat, 0.99)), added,
			thousands(int64(rps)), thousands(int64(cps)), p.says)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "client, proxy and backend share this machine's CPUs: the added latency is the proxy's own work, the rates are what the machine sustains (bench/part02 has the benchmarks)")

	// DSR: what would leave the balancer if responses went straight back.
	// L4 counts a connection's bytes when it ends: close the earlier ones
	// first, and measure on connections of this phase only.
	l.client.CloseIdleConnections()
	b := l.pool.Backends()[0]
	if err := waitIdle(ctx, b); err != nil {
		return err
	}
	const size, n = 100 << 10, 50
	up0, down0 := l.l4.Bytes()
	tr := &http.Transport{}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for range n {
		if _, err := send(ctx, c, "GET", fmt.Sprintf("http://%s/listing?size=%d", l.l4Addr, size), ""); err != nil {
			return err
		}
	}
	tr.CloseIdleConnections()
	if err := waitIdle(ctx, b); err != nil {
		return err
	}
	up, down := l.l4.Bytes()
	up, down = up-up0, down-down0
	fmt.Fprintf(w, "DSR: %d responses of 100 KiB through L4 carried %s client→backend and %s backend→client; with DSR only the first crosses the balancer: %.2f%% of the payload bytes (the FAQ: \"90%%+\" saved)\n\n",
		n, bytesIEC(up), bytesIEC(down), 100*float64(up)/float64(up+down))
	return nil
}

// waitIdle waits until no connection or request is open on b.
func waitIdle(ctx context.Context, b *balancer.Backend) error {
	for deadline := time.Now().Add(10 * time.Second); b.Inflight() > 0; time.Sleep(time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still has %d connection(s) open after 10 s", b.Name, b.Inflight())
		}
	}
	return nil
}

// sequential times n GETs one after another over one keep-alive connection.
func sequential(ctx context.Context, c *http.Client, url string, n int) ([]time.Duration, error) {
	for range 50 { // warm up: connections, pools
		if _, err := send(ctx, c, "GET", url, ""); err != nil {
			return nil, err
		}
	}
	lat := make([]time.Duration, 0, n)
	for range n {
		a, err := send(ctx, c, "GET", url, "")
		if err != nil {
			return nil, err
		}
		if a.status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d", url, a.status)
		}
		lat = append(lat, a.took)
	}
	return sorted(lat), ctx.Err()
}

// throughput sends n GETs from l4l7Clients goroutines and returns requests/s.
func throughput(ctx context.Context, c *http.Client, url string, n int) (float64, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range l4l7Clients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				a, err := send(ctx, c, "GET", url, "")
				if err == nil && a.status != http.StatusOK {
					err = fmt.Errorf("GET %s: status %d", url, a.status)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return float64(n) / time.Since(start).Seconds(), firstErr
}
