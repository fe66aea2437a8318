package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/clientip"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/middleware"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/proxyproto"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

// serveOptions are the flags of `serve`.
type serveOptions struct {
	addr, algo, redis, trusted, ipHeader, fail string
	limit, burst, hops                         int
	window                                     time.Duration
	proxyProtocol                              bool
}

func serveFlags(o *serveOptions) *flag.FlagSet {
	fs := cli.NewFlagSet("part11-ratelimit serve")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8081", "listen address")
	fs.StringVar(&o.algo, "algo", "gcra", "token (in process) | log | counter | gcra | fixed (Redis)")
	fs.StringVar(&o.redis, "redis", "auto", "auto (the stack's Redis if it answers, else miniredis) | mini")
	fs.IntVar(&o.limit, "limit", 10, "requests per window for GET /api/hello (1..1000000)")
	fs.DurationVar(&o.window, "window", time.Minute, "the window (1ms..744h)")
	fs.IntVar(&o.burst, "burst", 0, "burst for token and gcra (0 = limit)")
	fs.StringVar(&o.fail, "fail", "closed", "when the limiter fails on GET /api/hello: closed (503) | open (serve)")
	fs.StringVar(&o.trusted, "trusted-proxies", "", "proxy networks whose X-Forwarded-For (or -ip-header, or PROXY header) is believed, e.g. 10.0.0.0/8,192.0.2.1; empty: none")
	fs.IntVar(&o.hops, "trusted-hops", 0, "the client is this many entries from the right of X-Forwarded-For (0: walk back over -trusted-proxies instead)")
	fs.StringVar(&o.ipHeader, "ip-header", "", "a single-address header set by the trusted edge, e.g. CF-Connecting-IP")
	fs.BoolVar(&o.proxyProtocol, "proxy-protocol", false, "connections from -trusted-proxies must start with a PROXY v1/v2 header; from others it is refused")
	return fs
}

func parseServe(args []string) (serveOptions, error) {
	var o serveOptions
	fs := serveFlags(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q after serve's flags", fs.Arg(0))
	}
	_, trustErr := clientip.ParseTrusted(o.trusted)
	if err := cmp.Or( // the first of these that fails
		cli.OneOf("algo", o.algo, "token", "log", "counter", "gcra", "fixed"),
		cli.OneOf("redis", o.redis, "auto", "mini"),
		cli.OneOf("fail", o.fail, "open", "closed"),
		trustErr,
		cli.InRange("trusted-hops", o.hops, 0, 32),
	); err != nil {
		return o, err
	}
	switch {
	case (o.hops > 0 || o.ipHeader != "" || o.proxyProtocol) && o.trusted == "":
		return o, errors.New("-trusted-hops, -ip-header and -proxy-protocol need -trusted-proxies: with none, no proxy is believed")
	case o.hops > 0 && o.ipHeader != "":
		return o, errors.New("-trusted-hops and -ip-header are two ways to find the client; pick one")
	case o.proxyProtocol && (o.hops > 0 || o.ipHeader != ""):
		return o, errors.New("-proxy-protocol sets the client address from the PROXY header; -trusted-hops and -ip-header would be ignored")
	case o.burst > 0 && o.algo != "token" && o.algo != "gcra":
		return o, fmt.Errorf("-burst applies to -algo token and gcra; %s admits at most -limit per -window", o.algo)
	}
	if err := (quota.Policy{Limit: o.limit, Window: o.window, Burst: o.burst}).Validate(); err != nil {
		return o, fmt.Errorf("-limit/-window/-burst: %w", err)
	}
	return o, nil
}

// extractor turns the trust flags into a clientip rule; with none, the TCP
// peer is the client.
func (o serveOptions) extractor() (clientip.Extractor, string) {
	tr, _ := clientip.ParseTrusted(o.trusted) // checked by parseServe
	switch {
	case o.proxyProtocol:
		return clientip.RemoteAddr{}, "the PROXY header from " + tr.String() + ", else the TCP peer"
	case o.ipHeader != "":
		return clientip.SingleHeader{Header: o.ipHeader, Trusted: tr}, o.ipHeader + " from " + tr.String() + ", else the TCP peer"
	case o.hops > 0:
		return clientip.Hops{Count: o.hops, Trusted: tr}, fmt.Sprintf("X-Forwarded-For, %d from the right, from %s", o.hops, tr)
	case len(tr) > 0:
		return clientip.RightmostUntrusted{Trusted: tr}, "rightmost X-Forwarded-For entry outside " + tr.String()
	}
	return clientip.RemoteAddr{}, "the TCP peer (no proxy trusted)"
}

// newLimiter builds the chosen algorithm for p under prefix.
func newLimiter(algo string, p quota.Policy, rdb redislimit.Client, prefix string) (quota.Limiter, error) {
	if algo == "token" {
		return limiter.New(limiter.Config{Policy: p, MaxKeys: 100_000})
	}
	a, err := redislimit.ParseAlgorithm(algo)
	if err != nil {
		return nil, err
	}
	return redislimit.New(rdb, a, p, prefix)
}

// newAPI wires the routes behind the middleware: a per-route policy table.
func newAPI(o serveOptions, rdb redislimit.Client, log *slog.Logger) (http.Handler, error) {
	ip, _ := o.extractor()
	mw := middleware.New(ip, log)
	fail := middleware.FailClosed
	if o.fail == "open" {
		fail = middleware.FailOpen
	}
	hello, err := newLimiter(o.algo, quota.Policy{Limit: o.limit, Window: o.window, Burst: o.burst}, rdb, "rl:hello:")
	if err != nil {
		return nil, err
	}
	checkout, err := newLimiter(o.algo, quota.Policy{Limit: 2, Window: time.Minute}, rdb, "rl:checkout:")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		rule    middleware.Rule
		h       http.HandlerFunc
	}{
		{"GET /api/hello", middleware.Rule{Name: "hello", Limiter: hello, OnError: fail}, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello, %s\n", r.RemoteAddr)
		}},
		{"POST /api/checkout", middleware.Rule{Name: "checkout", Limiter: checkout, OnError: middleware.FailClosed}, func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, "order placed")
		}},
	} {
		mux.Handle(rt.pattern, mw.Limit(rt.rule, rt.h))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux, nil
}

func serve(ctx context.Context, w io.Writer, o serveOptions) error {
	var rdb redislimit.Client
	where := "in process"
	if o.algo != "token" {
		r, err := openRedis(ctx, o.redis)
		if err != nil {
			return err
		}
		defer r.close()
		rdb, where = r.client, r.name
	}
	api, err := newAPI(o, rdb, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	if o.proxyProtocol {
		tr, _ := clientip.ParseTrusted(o.trusted)
		ln = &proxyproto.Listener{Listener: ln, Trusted: tr.Contains}
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	_, about := o.extractor()
	fmt.Fprintf(w, "serving GET /api/hello (%d per %v, %s on %s, fail %s) and POST /api/checkout (2 per 1m, fail closed)\n",
		o.limit, o.window, o.algo, where, o.fail)
	fmt.Fprintf(w, "on http://%s ; client address: %s. Ctrl-C stops.\n", ln.Addr(), about)
	return cli.Serve(ctx, w, srv, ln, 5*time.Second)
}
