// Package part02bench measures what a balancer adds to one HTTP request on
// loopback: the same GET to the same backend directly, through the L4 proxy
// (part02-loadbalancing/l4, io.Copy with splice) and through the L7 proxy
// (part02-loadbalancing/l7, on httputil.ReverseProxy), beside a bare
// single-host httputil.ReverseProxy, the floor for any L7 proxy built on it.
//
// Names follow the side-by-side convention: BenchmarkHop/impl=NAME/hop=l4|l7/conc=N.
// In each hop group, impl=ours is the chapter's proxy and impl=direct the
// backend without a proxy, so benchratio's "direct÷ours" is the share of a
// proxied request's time the proxy does not add. conc=1 is one request at a
// time (latency); conc=8 is eight clients (throughput on this machine's cores,
// which client, proxy and backend share).
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 5 ./part02/...
package part02bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l4"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l7"
)

// backend answers every GET with a short body, like a small JSON API.
func backend(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"id":42,"name":"ok"}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func pool(b *testing.B, addr string) *balancer.Pool {
	p, err := balancer.NewPool(new(balancer.RoundRobin), balancer.NewBackend("b1", addr, 1))
	require.NoError(b, err)
	return p
}

// targets starts each contender in front of one backend and returns its URL.
func targets(b *testing.B) map[string]string {
	be := backend(b)
	addr := strings.TrimPrefix(be.URL, "http://")
	out := map[string]string{"direct": be.URL}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	p4 := &l4.Proxy{Pool: pool(b, addr)}
	go func() { _ = p4.Serve(ln) }()
	b.Cleanup(func() { _ = p4.Close() })
	out["l4"] = "http://" + ln.Addr().String()

	p7, err := l7.New(l7.Config{Pool: pool(b, addr)})
	require.NoError(b, err)
	s7 := httptest.NewServer(p7)
	b.Cleanup(func() { s7.Close(); p7.CloseIdleConnections() })
	out["l7"] = s7.URL

	u, err := url.Parse(be.URL)
	require.NoError(b, err)
	bare := httputil.NewSingleHostReverseProxy(u)
	bare.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	sb := httptest.NewServer(bare)
	b.Cleanup(sb.Close)
	out["httputil"] = sb.URL
	return out
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return io.ErrUnexpectedEOF
	}
	return err
}

func BenchmarkHop(b *testing.B) {
	urls := targets(b)
	for _, hop := range []struct {
		name  string
		impls []string
	}{
		{"l4", []string{"ours", "direct"}},
		{"l7", []string{"ours", "httputil", "direct"}},
	} {
		for _, impl := range hop.impls {
			url := urls[impl]
			if impl == "ours" {
				url = urls[hop.name]
			}
			for _, conc := range []int{1, 8} {
				b.Run("impl="+impl+"/hop="+hop.name+"/conc="+map[int]string{1: "1", 8: "8"}[conc], func(b *testing.B) {
					tr := &http.Transport{MaxIdleConnsPerHost: 64}
					defer tr.CloseIdleConnections()
					c := &http.Client{Transport: tr}
					require.NoError(b, get(c, url)) // connect before timing
					b.ReportAllocs()
					if conc == 1 {
						for b.Loop() {
							if err := get(c, url); err != nil {
								b.Fatal(err)
							}
						}
						return
					}
					b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := get(c, url); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		}
	}
}
