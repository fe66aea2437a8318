package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/clientip"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/proxyproto"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

const (
	attacker = "203.0.113.7"
	proxy    = "10.0.0.2"
	spoofed  = 20
)

var spoofPolicy = quota.Policy{Limit: 5, Window: time.Minute}

// keyRule names how a server picks the limiter key.
type keyRule struct {
	name string
	key  func(r *http.Request) (string, error)
}

func extract(x clientip.Extractor) func(r *http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		a, err := x.ClientIP(r)
		return a.String(), err
	}
}

// leftmostXFF is the naive rule the article warns about.
func leftmostXFF(r *http.Request) (string, error) {
	if first, _, _ := strings.Cut(r.Header.Get("X-Forwarded-For"), ","); first != "" {
		return strings.TrimSpace(first), nil
	}
	return extract(clientip.RemoteAddr{})(r)
}

// articleKey is the article's middleware key: RemoteAddr, port included.
func articleKey(r *http.Request) (string, error) { return "{rate:" + r.RemoteAddr + "}:log", nil }

func spoofDemo(ctx context.Context, w io.Writer, _ options) error {
	fmt.Fprintf(w, "== Client IP: %d requests from %s, each with a new source port and \"X-Forwarded-For: 8.8.8.<n>\"; limit %v ==\n", spoofed, attacker, spoofPolicy)
	proxies := clientip.Trusted{netip.MustParsePrefix("10.0.0.0/8")}
	tw := table(w)
	fmt.Fprintln(tw, "path\tkey rule\tadmitted\tdistinct keys")
	for _, sc := range []struct {
		path  string
		rules []keyRule
		req   func(i int) *http.Request
	}{
		{"direct", []keyRule{
			{"leftmost X-Forwarded-For (naive)", leftmostXFF},
			{"the article's \"{rate:\" + r.RemoteAddr + \"}:log\"", articleKey},
			{"clientip.RemoteAddr (port dropped)", extract(clientip.RemoteAddr{})},
			{"clientip.RightmostUntrusted, proxies 10.0.0.0/8", extract(clientip.RightmostUntrusted{Trusted: proxies})},
			{"clientip.SingleHeader CF-Connecting-IP, proxies 10.0.0.0/8", extract(clientip.SingleHeader{Header: "CF-Connecting-IP", Trusted: proxies})},
		}, func(i int) *http.Request {
			r := spoofRequest(attacker, i)
			r.Header.Set("CF-Connecting-IP", fmt.Sprintf("8.8.4.%d", i))
			return r
		}},
		{"via proxy " + proxy + " (appends)", []keyRule{
			{"leftmost X-Forwarded-For (naive)", leftmostXFF},
			{"clientip.RemoteAddr: every client is the proxy", extract(clientip.RemoteAddr{})},
			{"clientip.RightmostUntrusted, proxies 10.0.0.0/8", extract(clientip.RightmostUntrusted{Trusted: proxies})},
			{"clientip.Hops, 1 hop from 10.0.0.0/8", extract(clientip.Hops{Count: 1, Trusted: proxies})},
		}, func(i int) *http.Request {
			r := spoofRequest(proxy, i)
			r.Header.Set("X-Forwarded-For", r.Header.Get("X-Forwarded-For")+", "+attacker)
			return r
		}},
	} {
		for _, rule := range sc.rules {
			admitted, keys, err := countAdmitted(rule, sc.req)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s\t%d of %d\t%d\n", sc.path, rule.name, admitted, spoofed, keys)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "behind the proxy, RemoteAddr admits %d for everyone together: the attacker's spoofing costs it nothing, and every other client shares its bucket.\n", spoofPolicy.Limit)
	if err := proxyDemo(ctx, w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

func spoofRequest(peer string, i int) *http.Request {
	r := httptest.NewRequest("GET", "/api/hello", nil)
	r.RemoteAddr = fmt.Sprintf("%s:%d", peer, 40000+i)
	r.Header.Set("X-Forwarded-For", fmt.Sprintf("8.8.8.%d", i))
	return r
}

// countAdmitted sends the spoofed requests through a fresh keyed limiter
// (all at one instant) and counts admissions and distinct keys.
func countAdmitted(rule keyRule, req func(int) *http.Request) (admitted, keys int, err error) {
	l, err := limiter.New(limiter.Config{Policy: spoofPolicy, MaxKeys: 1000})
	if err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	at := time.Unix(1_750_000_000, 0)
	for i := range spoofed {
		key, err := rule.key(req(i))
		if err != nil {
			return 0, 0, err
		}
		seen[key] = true
		if d, _ := l.AllowAt(key, at); d.Allowed {
			admitted++
		}
	}
	return admitted, len(seen), nil
}

// proxyDemo sends PROXY headers over real loopback TCP to two listeners:
// one that trusts loopback peers (a load balancer's), one that trusts none.
func proxyDemo(ctx context.Context, w io.Writer) error {
	fmt.Fprintln(w, "PROXY protocol over loopback TCP (the header comes before any HTTP or TLS byte):")
	for _, tt := range []struct {
		listener string
		trusted  func(netip.Addr) bool
		header   []byte
	}{
		{"trusts loopback (the balancer's address)", func(a netip.Addr) bool { return a.IsLoopback() }, proxyproto.Header{Source: netip.MustParseAddrPort("198.51.100.9:56324"), Destination: netip.MustParseAddrPort("192.0.2.1:443")}.AppendV2(nil)},
		{"trusts loopback, v1 line", func(a netip.Addr) bool { return a.IsLoopback() }, proxyproto.Header{Source: netip.MustParseAddrPort("198.51.100.9:56324"), Destination: netip.MustParseAddrPort("192.0.2.1:443")}.AppendV1(nil)},
		{"trusts nobody; the client claims 8.8.8.8", nil, proxyproto.Header{Source: netip.MustParseAddrPort("8.8.8.8:1"), Destination: netip.MustParseAddrPort("192.0.2.1:443")}.AppendV1(nil)},
		{"trusts loopback; header malformed (port 99999)", func(a netip.Addr) bool { return a.IsLoopback() }, []byte("PROXY TCP4 198.51.100.9 192.0.2.1 99999 443\r\n")},
	} {
		got, refusal, err := proxyRoundTrip(ctx, tt.trusted, tt.header)
		if err != nil {
			return err
		}
		if refusal != nil {
			fmt.Fprintf(w, "  listener %-46s → refused (%s): %v\n", tt.listener, strings.TrimSpace(got), refusal)
			continue
		}
		fmt.Fprintf(w, "  listener %-46s → handler saw r.RemoteAddr = %s\n", tt.listener, got)
	}
	return nil
}

// proxyRoundTrip serves one request behind a proxyproto.Listener and sends
// header + a GET to it; it returns the body (the handler echoes
// r.RemoteAddr) and the listener's refusal, if any.
func proxyRoundTrip(ctx context.Context, trusted func(netip.Addr) bool, header []byte) (string, error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	refused := make(chan error, 1)
	pl := &proxyproto.Listener{Listener: ln, Trusted: trusted, OnError: func(_ net.Addr, err error) { refused <- err }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.RemoteAddr) }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(pl) }()
	defer srv.Close()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return "", nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(append(header, "GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"...)); err != nil {
		return "", nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", nil, err
	}
	select {
	case r := <-refused:
		return resp.Status, r, nil
	default:
		return string(body), nil, nil
	}
}
