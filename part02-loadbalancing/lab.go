package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l4"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l7"
)

// lab is what the demos measure: demo backends on loopback, one pool over
// them, the L7 proxy and (optionally) the L4 proxy in front, and a health
// checker.
type lab struct {
	fleet   []*fleet.Backend
	pool    *balancer.Pool
	l7      *l7.Proxy
	l7URL   string
	l4      *l4.Proxy
	l4Addr  string
	client  *http.Client // keep-alive, for requests to the proxies
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closers []func()
}

type labConfig struct {
	opts     []fleet.Options // one per backend
	weights  []int           // nil: all 1
	algo     func([]*balancer.Backend) balancer.Algorithm
	l7       l7.Config // Pool is filled in
	wrap     func(http.Handler) http.Handler
	l4       string        // the L4 proxy's listen address; "": none
	check    time.Duration // health-check interval; 0: no checker
	onChange func(b *balancer.Backend, healthy bool)
}

func startLab(cfg labConfig) (*lab, error) {
	l := &lab{}
	ok := false
	defer func() {
		if !ok {
			l.close()
		}
	}()
	var bs []*balancer.Backend
	for i, o := range cfg.opts {
		f, err := fleet.Start(fmt.Sprintf("b%d", i+1), o)
		if err != nil {
			return nil, err
		}
		l.fleet = append(l.fleet, f)
		l.closers = append(l.closers, f.Close)
		w := 1
		if cfg.weights != nil {
			w = cfg.weights[i]
		}
		bs = append(bs, balancer.NewBackend(f.Name, f.Addr(), w))
	}
	pool, err := balancer.NewPool(cfg.algo(bs), bs...)
	if err != nil {
		return nil, err
	}
	l.pool = pool
	cfg.l7.Pool = pool
	if l.l7, err = l7.New(cfg.l7); err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.l7.CloseIdleConnections)
	var h http.Handler = l.l7
	if cfg.wrap != nil {
		h = cfg.wrap(h)
	}
	addr, closeSrv, err := serveHTTP(h)
	if err != nil {
		return nil, err
	}
	l.l7URL = "http://" + addr
	l.closers = append(l.closers, closeSrv)
	if cfg.l4 != "" {
		ln, err := net.Listen("tcp", cfg.l4)
		if err != nil {
			return nil, err
		}
		l.l4 = &l4.Proxy{Pool: pool}
		l.l4Addr = ln.Addr().String()
		l.wg.Go(func() { _ = l.l4.Serve(ln) })
		l.closers = append(l.closers, func() { _ = l.l4.Close() })
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	l.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	l.closers = append(l.closers, tr.CloseIdleConnections)
	ctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	if cfg.check > 0 {
		probeTr := &http.Transport{DisableKeepAlives: true}
		// A probe may take a second whatever the interval: with the default
		// (half of it, 25 ms in the failover demo) a busy machine's slow
		// answers eject live backends.
		checker := &balancer.Checker{Pool: pool, Probe: balancer.HTTPProbe(&http.Client{Transport: probeTr}, "/healthz"),
			Interval: cfg.check, Timeout: max(cfg.check/2, time.Second), Rise: 2, Fall: 2, OnChange: cfg.onChange}
		l.wg.Go(func() { checker.Run(ctx) })
	}
	ok = true
	return l, nil
}

// close stops everything the lab started, last started first.
func (l *lab) close() {
	if l.stop != nil {
		l.stop()
	}
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
	l.wg.Wait()
}

// serveHTTP serves h on a free loopback port until the returned func.
func serveHTTP(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}

// answer is one response as the demos look at it.
type answer struct {
	status  int
	backend string
	header  http.Header
	body    string
	took    time.Duration
}

// send makes one request; hdr is name, value pairs.
func send(ctx context.Context, c *http.Client, method, url, body string, hdr ...string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := answer{status: resp.StatusCode, backend: resp.Header.Get(fleet.Header), header: resp.Header, took: time.Since(start)}
	if len(b) <= 512 {
		a.body = strings.TrimSpace(string(b))
	}
	return a, err
}

// fleetOf returns n identical backend options.
func fleetOf(n int, o fleet.Options) []fleet.Options {
	out := make([]fleet.Options, n)
	for i := range out {
		out[i] = o
	}
	return out
}
