// Package fleet runs demo HTTP backends on loopback for the balancer's
// experiments and tests: each answers with its name, can be made slow, be
// given a fixed number of workers (a capacity, so that load queues), be
// killed like a crashed process and be restarted on the same address.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header names the backend that served a response.
const Header = "X-Backend"

// Backend is one demo server.
type Backend struct {
	Name string

	delay   atomic.Int64 // service time per request, ns
	expo    bool
	workers chan struct{}
	drop    atomic.Bool // read the request, then close the connection unanswered
	hits    sync.Map    // method → *atomic.Int64

	mu   sync.Mutex
	addr string
	srv  *http.Server
	done chan struct{}
}

// Options shape a backend's behaviour.
type Options struct {
	Delay   time.Duration // time each request takes once a worker has it (the mean, with Exponential)
	Workers int           // requests served at once; the rest wait (0: no limit)
	// Exponential draws each request's service time from an exponential
	// distribution with mean Delay, as the simulation in package sim does:
	// real request costs vary, and variance is what builds queues.
	Exponential bool
}

// Start listens on a free loopback port and serves until Kill or Close.
func Start(name string, o Options) (*Backend, error) {
	b := &Backend{Name: name, expo: o.Exponential}
	b.delay.Store(int64(o.Delay))
	if o.Workers > 0 {
		b.workers = make(chan struct{}, o.Workers)
	}
	if err := b.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return b, nil
}

// StartN starts n backends named b1…bn with the same options.
func StartN(n int, o Options) ([]*Backend, error) {
	var out []*Backend
	for i := range n {
		b, err := Start(fmt.Sprintf("b%d", i+1), o)
		if err != nil {
			CloseAll(out)
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// CloseAll closes every backend.
func CloseAll(bs []*Backend) {
	for _, b := range bs {
		b.Close()
	}
}

// Addr is the backend's host:port; it stays the same across Restart.
func (b *Backend) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// SetDelay changes the service time of later requests.
func (b *Backend) SetDelay(d time.Duration) { b.delay.Store(int64(d)) }

// SetDrop makes the backend read each request and then close the connection
// without answering (true), the way a process that crashes mid-request looks
// to the proxy, or serve normally again (false).
func (b *Backend) SetDrop(drop bool) { b.drop.Store(drop) }

// Hits counts the requests that reached the handler with method ("" = all),
// including those dropped unanswered.
func (b *Backend) Hits(method string) int64 {
	var n int64
	b.hits.Range(func(k, v any) bool {
		if method == "" || k == method {
			n += v.(*atomic.Int64).Load()
		}
		return true
	})
	return n
}

// Kill closes the listener and every open connection at once, like a
// crashed process: requests in flight get a reset or EOF, new ones a refused
// connection.
func (b *Backend) Kill() {
	b.mu.Lock()
	srv, done := b.srv, b.done
	b.srv = nil
	b.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-done
}

// Close is Kill; a backend can be closed twice.
func (b *Backend) Close() { b.Kill() }

// Restart listens again on the same address after Kill.
func (b *Backend) Restart() error {
	b.mu.Lock()
	running, addr := b.srv != nil, b.addr
	b.mu.Unlock()
	if running {
		return errors.New("fleet: " + b.Name + " is running")
	}
	return b.listen(addr)
}

func (b *Backend) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	b.mu.Lock()
	b.addr, b.srv, b.done = ln.Addr().String(), srv, done
	b.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return nil
}

// ServeHTTP answers /healthz with 200, and anything else, after the delay,
// with the backend's name in Header and in the body (or, with ?size=N, N
// bytes of filler), plus the number of request body bytes it read.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	c, _ := b.hits.LoadOrStore(r.Method, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
	n, _ := io.Copy(io.Discard, r.Body)
	if b.drop.Load() {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	if b.workers != nil {
		select {
		case b.workers <- struct{}{}:
			defer func() { <-b.workers }()
		case <-r.Context().Done():
			return
		}
	}
	if d := time.Duration(b.delay.Load()); d > 0 {
		if b.expo {
			d = time.Duration(rand.ExpFloat64() * float64(d))
		}
		if !sleep(r.Context(), d) {
			return
		}
	}
	w.Header().Set(Header, b.Name)
	w.Header().Set("X-Body-Bytes", strconv.FormatInt(n, 10))
	if size, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil && size > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for size > 0 {
			n := min(size, len(filler))
			if _, err := w.Write(filler[:n]); err != nil {
				return
			}
			size -= n
		}
		return
	}
	_, _ = io.WriteString(w, b.Name+"\n")
}

// filler is the body of a sized response (?size=N): a product listing's
// worth of bytes for the DSR measurement.
var filler = []byte(strings.Repeat("x", 64<<10))

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
