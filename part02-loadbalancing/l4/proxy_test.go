package l4

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l7"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func rr([]*balancer.Backend) balancer.Algorithm { return new(balancer.RoundRobin) }

// tcpBackend reads each connection to EOF, then answers "<name> got N
// bytes" and closes: it only answers if the proxy passes the client's
// half-close on.
func tcpBackend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				fmt.Fprintf(c, "%s got %d bytes", name, n)
			})
		}
	})
	return ln.Addr().String()
}

// serve starts a proxy over the given backend addresses on a loopback
// listener (or on ln if given) and returns its address.
func serve(t *testing.T, algo func([]*balancer.Backend) balancer.Algorithm, addrs []string, ln net.Listener) (*Proxy, *balancer.Pool, string) {
	t.Helper()
	var bs []*balancer.Backend
	for i, a := range addrs {
		bs = append(bs, balancer.NewBackend(fmt.Sprintf("b%d", i+1), a, 1))
	}
	pool, err := balancer.NewPool(algo(bs), bs...)
	require.NoError(t, err)
	if ln == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
	}
	p := &Proxy{Pool: pool}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, p.Close())
		assert.ErrorIs(t, <-served, ErrClosed)
	})
	return p, pool, ln.Addr().String()
}

// exchange sends payload, half-closes, and reads the whole answer.
func exchange(t *testing.T, addr string, payload []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write(payload)
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	return string(got)
}

// A client that sends 1 MiB, shuts down its writes and waits gets the
// answer: the proxy forwards the FIN and keeps the other direction open.
// Bytes counts both directions.
func TestHalfClose(t *testing.T) {
	p, _, addr := serve(t, rr, []string{tcpBackend(t, "b1")}, nil)
	payload := make([]byte, 1<<20)
	assert.Equal(t, "b1 got 1048576 bytes", exchange(t, addr, payload))
	require.Eventually(t, func() bool { up, _ := p.Bytes(); return up == 1<<20 }, 10*time.Second, time.Millisecond)
	_, down := p.Bytes()
	assert.Equal(t, int64(len("b1 got 1048576 bytes")), down)
}

// Connections, not requests, are balanced: round robin spreads 30
// connections 10/10/10, but 10 HTTP requests on one keep-alive connection
// all reach one backend.
func TestBalancesConnectionsNotRequests(t *testing.T) {
	addrs := []string{tcpBackend(t, "b1"), tcpBackend(t, "b2"), tcpBackend(t, "b3")}
	_, _, addr := serve(t, rr, addrs, nil)
	got := map[string]int{}
	for range 30 {
		name, _, _ := strings.Cut(exchange(t, addr, []byte("hi")), " ")
		got[name]++
	}
	assert.Equal(t, map[string]int{"b1": 10, "b2": 10, "b3": 10}, got)

	fl, err := fleet.StartN(3, fleet.Options{})
	require.NoError(t, err)
	defer fleet.CloseAll(fl)
	_, _, haddr := serve(t, rr, []string{fl[0].Addr(), fl[1].Addr(), fl[2].Addr()}, nil)
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	seen := map[string]int{}
	for range 10 {
		resp, err := client.Get("http://" + haddr + "/")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen[resp.Header.Get(fleet.Header)]++
	}
	assert.Len(t, seen, 1, "one connection, one backend: %v", seen)
}

// Source IP hash: every connection from 127.0.0.1 goes to one backend.
func TestSourceIPHash(t *testing.T) {
	addrs := []string{tcpBackend(t, "b1"), tcpBackend(t, "b2"), tcpBackend(t, "b3")}
	hash := func(bs []*balancer.Backend) balancer.Algorithm { return balancer.NewConsistentHash(bs, 0, nil) }
	_, _, addr := serve(t, hash, addrs, nil)
	got := map[string]int{}
	for range 12 {
		name, _, _ := strings.Cut(exchange(t, addr, []byte("hi")), " ")
		got[name]++
	}
	assert.Len(t, got, 1, "one source address: %v", got)
}

// A refused connect goes to the next backend and ejects the refuser.
func TestRefusedBackendIsSkippedAndEjected(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := dead.Addr().String()
	dead.Close()
	_, pool, addr := serve(t, rr, []string{deadAddr, tcpBackend(t, "b2")}, nil)
	for range 4 {
		assert.Equal(t, "b2 got 2 bytes", exchange(t, addr, []byte("hi")))
	}
	assert.False(t, pool.Backends()[0].Healthy())
	assert.Zero(t, pool.Backends()[0].Inflight())
	assert.Eventually(t, func() bool { return pool.Backends()[1].Inflight() == 0 }, 10*time.Second, time.Millisecond, "every connection ends")
}

// flakyListener fails its first Accept with err, as accept(2) does when the
// process is out of file descriptors, then accepts normally.
type flakyListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	var err error
	l.once.Do(func() { err = l.err })
	if err != nil {
		return nil, err
	}
	return l.Listener.Accept()
}

// Running out of file descriptors (EMFILE, ENFILE) is passing: a
// connection flood must not stop the proxy from accepting for good.
func TestServeSurvivesFileDescriptorExhaustion(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ln := &flakyListener{Listener: inner, err: &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}}
			_, _, addr := serve(t, rr, []string{tcpBackend(t, "b1")}, ln)
			assert.Equal(t, "b1 got 2 bytes", exchange(t, addr, []byte("hi")))
		})
	}
}

// The article's table says an L4 balancer passes TLS through only. Serve
// takes any net.Listener: behind a tls.Listener this proxy terminates TLS
// and the backend reads plain bytes (HAProxy's "mode tcp" with "bind :443
// ssl crt …" does the same).
func TestTerminatesTLS(t *testing.T) {
	cert := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := tls.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}})
	_, _, addr := serve(t, rr, []string{tcpBackend(t, "b1")}, ln)

	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "lb.test"})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write([]byte("secret"))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite()) // close_notify: the proxy's read ends, it half-closes the backend
	got, err := io.ReadAll(bufio.NewReader(c))
	require.NoError(t, err)
	assert.Equal(t, "b1 got 6 bytes", string(got), "the backend counted plaintext bytes")
}

// Close ends Serve, the open connections and their goroutines (goleak).
func TestCloseEndsOpenConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p, _, addr := serve(t, rr, []string{tcpBackend(t, "b1")}, ln)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Pool.Backends()[0].Inflight() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, p.Close())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(fmt.Sprint(err), "reset"), "%v", err)
	assert.Zero(t, p.Pool.Backends()[0].Inflight())
	assert.ErrorIs(t, p.Serve(ln), ErrClosed, "a closed proxy serves nothing")
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lb.test"}, DNSNames: []string{"lb.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// A rolling restart of a two-backend pool through the L4 proxy: b1 restarts
// (refused, ejected), comes back, then b2 restarts. Passive ejection must not
// leave the proxy with nothing: every connection reaches whichever backend is
// up. It used to eject both for 10 s and refuse every connection meanwhile.
func TestRollingRestartNeverEmptiesThePool(t *testing.T) {
	fl, err := fleet.StartN(2, fleet.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { fleet.CloseAll(fl) })
	_, _, addr := serve(t, rr, []string{fl[0].Addr(), fl[1].Addr()}, nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	served := func(want string) {
		t.Helper()
		for range 6 {
			resp, err := client.Get("http://" + addr + "/")
			if !assert.NoError(t, err) {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			if want != "" {
				assert.Equal(t, want, resp.Header.Get(fleet.Header))
			}
		}
	}
	fl[0].Kill()
	served("b2")
	require.NoError(t, fl[0].Restart())
	fl[1].Kill()
	served("b1")
	require.NoError(t, fl[1].Restart())
	served("")
}

// countingPicks is round robin that counts its decisions.
type countingPicks struct {
	balancer.RoundRobin
	n atomic.Int64
}

func (c *countingPicks) Pick(bs []*balancer.Backend, key string) *balancer.Backend {
	c.n.Add(1)
	return c.RoundRobin.Pick(bs, key)
}

// The article's throughput row sets L4's "millions of connections/s" beside
// L7's "hundreds of thousands/s", and its FAQ says "connections/second"
// for L4: two units. An L4 balancer decides once per connection, an L7 one
// once per request, and a keep-alive connection carries many requests: 100
// requests over 10 connections are 10 decisions through L4 and 100 through
// L7. The demo measures both rates on both proxies (-mode l4l7).
func TestArticleConnectionsAreNotRequests(t *testing.T) {
	fl, err := fleet.StartN(2, fleet.Options{})
	require.NoError(t, err)
	defer fleet.CloseAll(fl)
	addrs := []string{fl[0].Addr(), fl[1].Addr()}
	at4 := &countingPicks{}
	_, _, addr4 := serve(t, func([]*balancer.Backend) balancer.Algorithm { return at4 }, addrs, nil)
	at7 := &countingPicks{}
	var bs []*balancer.Backend
	for i, a := range addrs {
		bs = append(bs, balancer.NewBackend(fmt.Sprintf("b%d", i+1), a, 1))
	}
	pool, err := balancer.NewPool(at7, bs...)
	require.NoError(t, err)
	p7, err := l7.New(l7.Config{Pool: pool})
	require.NoError(t, err)
	srv7 := httptest.NewServer(p7)
	defer func() { srv7.Close(); p7.CloseIdleConnections() }()

	for _, url := range []string{"http://" + addr4 + "/", srv7.URL + "/"} {
		for range 10 { // 10 clients, one keep-alive connection each, 10 requests each
			tr := &http.Transport{MaxConnsPerHost: 1}
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for range 10 {
				resp, err := client.Get(url)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
			}
			tr.CloseIdleConnections()
		}
	}
	assert.Equal(t, int64(10), at4.n.Load(), "L4: one decision per connection")
	assert.Equal(t, int64(100), at7.n.Load(), "L7: one decision per request")
}
