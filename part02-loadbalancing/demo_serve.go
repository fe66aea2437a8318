package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l7"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/ratelimit"
)

// serveOptions are the serve subcommand's flags.
type serveOptions struct {
	addr, l4, algo, trusted string
	backends, burst         int
	rate                    float64
	check                   time.Duration
}

var algorithms = map[string]func([]*balancer.Backend) balancer.Algorithm{
	"rr":        func([]*balancer.Backend) balancer.Algorithm { return new(balancer.RoundRobin) },
	"wrr":       func([]*balancer.Backend) balancer.Algorithm { return new(balancer.SmoothWeighted) },
	"leastconn": func([]*balancer.Backend) balancer.Algorithm { return new(balancer.LeastConn) },
	"p2c":       func([]*balancer.Backend) balancer.Algorithm { return balancer.NewP2C(nil) },
	"hash":      func(bs []*balancer.Backend) balancer.Algorithm { return balancer.NewConsistentHash(bs, 0, nil) },
}

const algoNames = "rr | wrr | leastconn | p2c | hash"

func serveFlags(o *serveOptions) *flag.FlagSet {
	fs := cli.NewFlagSet("part02-loadbalancing serve")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "the L7 balancer's address (and /_lab/ to kill and restart backends)")
	fs.StringVar(&o.l4, "l4", "127.0.0.1:8081", `the L4 balancer's address ("" for none)`)
	fs.StringVar(&o.algo, "algo", "p2c", "balancing algorithm: "+algoNames+" (hash: on the X-User-ID header, client IP at L4; wrr: weights 3, 2, 1, 1, …)")
	fs.IntVar(&o.backends, "backends", 3, "demo backends to start on loopback (1..16)")
	fs.Float64Var(&o.rate, "rate", 10, "per-client rate limit in front of L7, requests per second (0 for none)")
	fs.IntVar(&o.burst, "burst", 20, "per-client burst (1..1000000)")
	fs.StringVar(&o.trusted, "trusted", "", "proxies whose X-Forwarded-For the limiter believes: CIDRs or addresses, comma-separated (default none)")
	fs.DurationVar(&o.check, "check", time.Second, "health-check interval (10ms..1m)")
	return fs
}

func serveUsage() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part02-loadbalancing serve [-addr A] [-l4 A] [-algo ALG] [-backends N] [-rate R] [-burst B] [-trusted CIDRS] [-check D]\n")
	cli.WriteFlags(&b, "flags", serveFlags(new(serveOptions)))
	return b.String()
}

func parseServe(args []string) (serveOptions, error) {
	var o serveOptions
	fs := serveFlags(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q after serve's flags", fs.Arg(0))
	case algorithms[o.algo] == nil:
		return o, fmt.Errorf("unknown -algo %q; want %s", o.algo, algoNames)
	case o.backends < 1 || o.backends > 16:
		return o, fmt.Errorf("-backends %d is out of range 1..16", o.backends)
	case o.rate < 0 || o.rate > 1e6:
		return o, fmt.Errorf("-rate %v is out of range 0..1000000", o.rate)
	case o.burst < 1 || o.burst > 1_000_000:
		return o, fmt.Errorf("-burst %d is out of range 1..1000000", o.burst)
	case o.check < 10*time.Millisecond || o.check > time.Minute:
		return o, fmt.Errorf("-check %v is out of range 10ms..1m", o.check)
	}
	if _, err := ratelimit.ParseTrusted(o.trusted); err != nil {
		return o, err
	}
	return o, nil
}

// syncWriter serialises writes from the health checker and the main goroutine.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// runServe starts backends, the L7 and L4 balancers and the health checker
// on loopback, and serves until ctx ends (Ctrl-C).
func runServe(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseServe(args)
	if err != nil {
		return cli.ParseFailed(out, err, serveUsage())
	}
	w := &syncWriter{w: out}
	trusted, _ := ratelimit.ParseTrusted(o.trusted)
	var weights []int
	for i := range o.backends {
		weights = append(weights, max(3-i, 1))
	}
	cfg := labConfig{
		opts: fleetOf(o.backends, fleet.Options{}), weights: weights, algo: algorithms[o.algo],
		l7:    l7.Config{Key: func(r *http.Request) string { return r.Header.Get("X-User-ID") }},
		l4:    o.l4,
		check: o.check,
		onChange: func(b *balancer.Backend, healthy bool) {
			fmt.Fprintf(w, "%s %s %s\n", time.Now().Format("15:04:05.000"), b.Name, map[bool]string{true: "readmitted", false: "ejected by the health checker"}[healthy])
		},
	}
	var limiter *ratelimit.Middleware
	if o.rate > 0 {
		pc, err := ratelimit.NewPerClient(ratelimit.PerClientConfig{Rate: rate.Limit(o.rate), Burst: o.burst})
		if err != nil {
			return &cli.UsageError{Err: err, Usage: serveUsage()}
		}
		defer pc.Close()
		limiter = &ratelimit.Middleware{Limiter: pc, ClientIP: ratelimit.ClientIP{Trusted: trusted}}
	}
	l, err := startLab(cfg)
	if err != nil {
		return err
	}
	defer l.close()

	front := http.NewServeMux()
	var proxy http.Handler = l.l7
	if limiter != nil {
		proxy = limiter.Wrap(proxy)
	}
	front.Handle("/", proxy)
	front.HandleFunc("GET /_lab/status", func(rw http.ResponseWriter, _ *http.Request) { labStatus(rw, l) })
	front.HandleFunc("POST /_lab/{verb}/{name}", func(rw http.ResponseWriter, r *http.Request) { labControl(rw, r, l, w) })
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: front, ReadHeaderTimeout: 5 * time.Second}
	l4Line := ""
	if l.l4 != nil {
		l4Line = "and L4 on " + l.l4Addr
	}
	for _, f := range l.fleet {
		fmt.Fprintf(w, "backend %s on http://%s\n", f.Name, f.Addr())
	}
	limit := "no rate limit"
	if limiter != nil {
		limit = fmt.Sprintf("per-client limit %g/s, burst %d", o.rate, o.burst)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(w, "L7 on %s (%s, %s, health checks every %v) %s — Ctrl-C stops\n", base, o.algo, limit, o.check, l4Line)
	fmt.Fprintf(w, "  curl -i %s/                                 # X-Backend says who answered\n", base)
	fmt.Fprintf(w, "  curl -H 'X-User-ID: ada' %s/                # -algo hash: always the same backend\n", base)
	fmt.Fprintf(w, "  curl -X POST %s/_lab/kill/b1; curl %s/_lab/status   # then restart: POST /_lab/restart/b1\n", base, base)
	fmt.Fprintf(w, "  for i in $(seq 30); do curl -s -o /dev/null -w '%%{http_code} ' %s/; done   # burst, then 429\n", base)
	return cli.Serve(ctx, w, srv, ln, 5*time.Second)
}

func labStatus(rw http.ResponseWriter, l *lab) {
	type backend struct {
		Name     string `json:"name"`
		Addr     string `json:"addr"`
		Weight   int    `json:"weight"`
		Healthy  bool   `json:"healthy"`
		Inflight int64  `json:"inflight"`
		Served   int64  `json:"served"`
	}
	var bs []backend
	for i, b := range l.pool.Backends() {
		bs = append(bs, backend{b.Name, b.Addr, b.Weight, b.Healthy(), b.Inflight(), l.fleet[i].Hits("")})
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(map[string]any{"backends": bs, "l7": l.l7.Stats()})
}

func labControl(rw http.ResponseWriter, r *http.Request, l *lab, log io.Writer) {
	var f *fleet.Backend
	for _, b := range l.fleet {
		if b.Name == r.PathValue("name") {
			f = b
		}
	}
	if f == nil {
		http.Error(rw, "no backend "+r.PathValue("name"), http.StatusNotFound)
		return
	}
	switch r.PathValue("verb") {
	case "kill":
		f.Kill()
	case "restart":
		if err := f.Restart(); err != nil {
			http.Error(rw, err.Error(), http.StatusConflict)
			return
		}
	default:
		http.Error(rw, "verbs: kill, restart", http.StatusNotFound)
		return
	}
	fmt.Fprintf(log, "%s %s: %s\n", time.Now().Format("15:04:05.000"), r.PathValue("verb"), f.Name)
	fmt.Fprintf(rw, "%s: %s\n", r.PathValue("verb"), f.Name)
}
