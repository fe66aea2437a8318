// Command vshaproxy measures part 2's L7 balancer beside HAProxy on the same
// backends, side by side in one run: three demo backends (the chapter's
// fleet package) in this process, the L7 proxy (part02-loadbalancing/l7,
// round robin, as `serve -rate 0 -algo rr` builds it) in a child process of
// its own, HAProxy (nbthread 1, http-reuse always, roundrobin) in another,
// a bare httputil.ReverseProxy and "floor" (the least a proxy on net/http's
// server and client does: floorProxy) in two more, and wrk driving each in
// turn, rotating which goes first. Each run
// prints benchfmt lines that benchratio reads:
//
//	BenchmarkL7/impl=ours/wrk=t1c32-2  1  <ns per request> ns/op  <req/s> req/s  <p99 ms> p99-ms  <µs> cpu-µs/req
//
// ns/op is 1e9 ÷ req/s, so benchratio's haproxy÷ours on ns/op is ours÷haproxy
// in throughput. cpu-µs/req is the proxy process's own CPU time per request
// (from /proc), which a busy machine inflates less than it does req/s. The
// load average before and after each run is printed as a comment line.
//
//	go run ./cmd/vshaproxy -count 5            # from bench/; make bench-part02 runs it
//	go run ./cmd/vshaproxy -profile cpu.pprof  # also CPU and allocation profiles of our proxy under wrk
//	go run ./cmd/vshaproxy -count 1 -impls ours,floor
//
// It needs haproxy and wrk (apt-get install haproxy wrk); without them it says
// so and exits 0, so that make bench-part02 still runs the Go benchmarks.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l7"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-child-proxy" {
		if err := childProxy(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "vshaproxy proxy:", err)
			os.Exit(1)
		}
		return
	}
	count := flag.Int("count", 5, "rounds; each runs wrk once against each proxy")
	dur := flag.Duration("d", 8*time.Second, "wrk's duration per run")
	conns := flag.Int("c", 32, "wrk's connections")
	threads := flag.Int("t", 1, "wrk's threads")
	profile := flag.String("profile", "", "write a CPU profile of our proxy during its first run to this file (and its allocations to NAME.allocs.pprof)")
	only := flag.String("impls", "ours,haproxy,httputil,floor", "the proxies to measure, comma-separated")
	flag.Parse()
	for _, impl := range strings.Split(*only, ",") {
		if !slices.Contains([]string{"ours", "haproxy", "httputil", "floor"}, impl) {
			fmt.Fprintf(os.Stderr, "vshaproxy: -impls: %q is none of ours, haproxy, httputil, floor\n", impl)
			os.Exit(2)
		}
	}
	var missing []string
	for _, bin := range []string{"haproxy", "wrk"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "vshaproxy: skipped, %s not installed: apt-get install haproxy wrk (Debian/Ubuntu), brew install haproxy wrk (macOS)\n", strings.Join(missing, " and "))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, strings.Split(*only, ","), *count, *dur, *conns, *threads, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "vshaproxy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, impls []string, count int, dur time.Duration, conns, threads int, profile string) error {
	backends, err := fleet.StartN(3, fleet.Options{})
	if err != nil {
		return err
	}
	defer fleet.CloseAll(backends)
	var addrs []string
	for _, b := range backends {
		addrs = append(addrs, b.Addr())
	}
	dir, err := os.MkdirTemp("", "vshaproxy")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	oursAddr, haAddr := freeAddr(), freeAddr()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := func(kind, addr, profile string) (*exec.Cmd, error) {
		args := []string{"-child-proxy", kind, addr, strings.Join(addrs, ",")}
		if profile != "" {
			abs, err := filepath.Abs(profile)
			if err != nil {
				return nil, err
			}
			args = append(args, abs)
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stderr = os.Stderr
		return cmd, cmd.Start()
	}
	bareAddr := freeAddr()
	ours, err := start("ours", oursAddr, profile)
	if err != nil {
		return err
	}
	defer func() { _ = ours.Process.Signal(os.Interrupt); _ = ours.Wait() }()
	bare, err := start("httputil", bareAddr, "")
	if err != nil {
		return err
	}
	defer func() { _ = bare.Process.Signal(os.Interrupt); _ = bare.Wait() }()
	floorAddr := freeAddr()
	floor, err := start("floor", floorAddr, "")
	if err != nil {
		return err
	}
	defer func() { _ = floor.Process.Signal(os.Interrupt); _ = floor.Wait() }()

	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(haAddr, addrs)), 0o600); err != nil {
		return err
	}
	ha := exec.CommandContext(ctx, "haproxy", "-db", "-f", cfg)
	ha.Stderr = os.Stderr
	if err := ha.Start(); err != nil {
		return err
	}
	defer func() { _ = ha.Process.Kill(); _ = ha.Wait() }()
	for _, a := range []string{oursAddr, haAddr, bareAddr, floorAddr} {
		if err := waitHTTP(ctx, "http://"+a+"/"); err != nil {
			return err
		}
	}
	version, _ := exec.Command("haproxy", "-v").Output()
	fmt.Printf("# %s", firstLine(string(version)))
	fmt.Printf("# wrk -t%d -c%d -d%v --latency; 3 backends (part02 fleet) in one process, each proxy in its own\n", threads, conns, dur)
	fmt.Printf("goos: %s\ngoarch: %s\npkg: github.com/sysdesign-masterclass/golang/bench/part02\ncpu: %s\n", runtime.GOOS, runtime.GOARCH, cpuModel())

	procs := map[string]*os.Process{"ours": ours.Process, "haproxy": ha.Process, "httputil": bare.Process, "floor": floor.Process}
	urls := map[string]string{"ours": "http://" + oursAddr + "/", "haproxy": "http://" + haAddr + "/",
		"httputil": "http://" + bareAddr + "/", "floor": "http://" + floorAddr + "/"}
	for _, impl := range impls { // warm all: connections, caches
		if _, err := wrk(ctx, urls[impl], time.Second, conns, threads); err != nil {
			return err
		}
	}
	name := fmt.Sprintf("BenchmarkL7/impl=%%s/wrk=t%dc%d-%d", threads, conns, runtime.NumCPU())
	for round := range count {
		order := slices.Clone(impls)
		for range round % len(order) { // each goes first, second, ... in turn
			order = append(order[1:], order[0])
		}
		for _, impl := range order {
			load0 := loadAvg()
			cpu0, err := cpuTime(procs[impl].Pid)
			if err != nil {
				return err
			}
			r, err := wrk(ctx, urls[impl], dur, conns, threads)
			if err != nil {
				return fmt.Errorf("%s: %w", impl, err)
			}
			cpu1, err := cpuTime(procs[impl].Pid)
			if err != nil {
				return err
			}
			fmt.Printf("# %s round %d: load average %s before, %s after; %d requests, %d non-2xx or socket errors\n",
				impl, round+1, load0, loadAvg(), r.requests, r.errors)
			fmt.Printf(name+" \t       1\t%12.0f ns/op\t%10.0f req/s\t%8.3f p99-ms\t%8.2f cpu-µs/req\n",
				impl, 1e9/r.rps, r.rps, r.p99.Seconds()*1000, float64((cpu1-cpu0).Microseconds())/float64(r.requests))
		}
	}
	return nil
}

// haproxyConfig is HAProxy in front of addrs the way the L7 proxy is: round
// robin, keep-alive to the backends (http-reuse always), one thread, health
// checks every second as serve's checker does.
func haproxyConfig(bind string, addrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend web
    bind %s
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /healthz
`, bind)
	for i, a := range addrs {
		fmt.Fprintf(&b, "    server b%d %s check inter 1s\n", i+1, a)
	}
	return b.String()
}

// childProxy serves a proxy on addr over the comma-separated backends until
// interrupted: kind "ours" is the L7 proxy with a health checker, as serve
// runs it; "httputil" is a bare httputil.ReverseProxy that rotates over the
// backends, with no buffer pool (its defaults); "floor" is floorProxy. A fourth argument writes a
// CPU profile of the first 12 seconds there.
func childProxy(args []string) error {
	if len(args) < 3 {
		return errors.New("usage: -child-proxy ours|httputil ADDR BACKENDS [PROFILE]")
	}
	kind, addr, list := args[0], args[1], strings.Split(args[2], ",")
	args = args[3:]
	if kind == "floor" {
		return serveUntilInterrupt(addr, floorProxy(list), "")
	}
	if kind == "httputil" {
		var next atomic.Uint64
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL.Scheme, pr.Out.URL.Host = "http", list[next.Add(1)%uint64(len(list))]
				pr.SetXForwarded()
			},
			Transport: &http.Transport{MaxIdleConnsPerHost: 256},
			// wrk closes its connections mid-request when its time is up;
			// each would log "proxy error: context canceled".
			ErrorLog: log.New(io.Discard, "", 0),
		}
		return serveUntilInterrupt(addr, rp, "")
	}
	var bs []*balancer.Backend
	for i, a := range list {
		bs = append(bs, balancer.NewBackend(fmt.Sprintf("b%d", i+1), a, 1))
	}
	pool, err := balancer.NewPool(new(balancer.RoundRobin), bs...)
	if err != nil {
		return err
	}
	p, err := l7.New(l7.Config{Pool: pool})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	probeClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	checker := &balancer.Checker{Pool: pool, Probe: balancer.HTTPProbe(probeClient, "/healthz"), Interval: time.Second}
	go checker.Run(ctx)
	profile := ""
	if len(args) > 0 {
		profile = args[0]
	}
	return serveUntilInterrupt(addr, p, profile)
}

// floorProxy is the least a proxy on net/http's server and client does:
// a new request with the client's headers to the next backend in turn, the
// response's headers and body copied back with a pooled buffer, over a
// transport and server tuned as ours are. No hop-by-hop handling, no
// X-Forwarded-For, no retry, no error page: less than any correct proxy on
// net/http's server and Transport does, so a floor for that design on the
// same machine as the others (not for a proxy that hijacks connections and
// speaks HTTP/1 to the backends itself).
func floorProxy(list []string) http.Handler {
	var next atomic.Uint64
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	bufs := sync.Pool{New: func() any { return new([32 << 10]byte) }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := &http.Request{
			Method: r.Method, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			URL:    &url.URL{Scheme: "http", Host: list[next.Add(1)%uint64(len(list))], Path: r.URL.Path, RawQuery: r.URL.RawQuery},
			Header: r.Header, Host: r.Host, Body: r.Body, ContentLength: r.ContentLength,
		}
		if r.ContentLength == 0 {
			out.Body = nil
		}
		resp, err := tr.RoundTrip(out.WithContext(r.Context()))
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		h := w.Header()
		for k, v := range resp.Header {
			h[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := bufs.Get().(*[32 << 10]byte)
		defer bufs.Put(buf)
		_, _ = io.CopyBuffer(w, resp.Body, buf[:])
	})
}

// serveUntilInterrupt serves h on addr until SIGINT, with a CPU profile of
// the first 12 seconds (the warm-up and the first run) if profile is set.
func serveUntilInterrupt(addr string, h http.Handler, profile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		var once sync.Once
		done := func() {
			once.Do(func() {
				pprof.StopCPUProfile()
				f.Close()
				// and the allocations since the start, beside it
				if af, err := os.Create(strings.TrimSuffix(profile, ".pprof") + ".allocs.pprof"); err == nil {
					_ = pprof.Lookup("allocs").WriteTo(af, 0)
					af.Close()
				}
			})
		}
		defer done()
		time.AfterFunc(12*time.Second, done)
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type wrkResult struct {
	rps              float64
	p99              time.Duration
	requests, errors int64
}

var (
	rpsRe  = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	p99Re  = regexp.MustCompile(`\s99%\s+([\d.]+)(us|ms|s)\b`)
	reqRe  = regexp.MustCompile(`(\d+) requests in`)
	errsRe = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)|Non-2xx or 3xx responses: (\d+)`)
)

// wrk runs wrk against url and parses its summary.
func wrk(ctx context.Context, url string, d time.Duration, conns, threads int) (wrkResult, error) {
	out, err := exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	var r wrkResult
	s := string(out)
	m := rpsRe.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk printed no Requests/sec:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m = p99Re.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		r.p99 = time.Duration(v * float64(map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[2]]))
	}
	if m = reqRe.FindStringSubmatch(s); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	for _, m := range errsRe.FindAllStringSubmatch(s, -1) {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.errors += n
		}
	}
	if r.requests == 0 {
		return r, fmt.Errorf("wrk completed no request:\n%s", s)
	}
	return r, nil
}

// cpuTime is a process's user + system CPU time from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after "pid (comm) "
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line + "\n"
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer: %w", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
