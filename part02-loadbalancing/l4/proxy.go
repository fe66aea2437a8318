// Package l4 is a TCP load balancer: it accepts a connection, picks a
// backend from a balancer.Pool once, and copies bytes both ways until both
// sides are done. It never parses the stream, so it balances connections,
// not requests: a client that keeps one connection open sends all its
// requests to one backend.
//
// io.Copy between two *net.TCPConn uses splice(2) on Linux, so the payload
// moves socket to socket inside the kernel; wrapping either conn (to count
// bytes, say) would turn that off, which is why the byte counts come from
// io.Copy's return values. When one side finishes sending (FIN) the proxy
// half-closes the other side's write direction instead of closing both, so
// a client that shuts down its writes and then waits for the answer still
// gets it.
//
// A connection refused or timed out while dialling is retried on another
// backend (nothing was sent yet) and the refusing backend is ejected for
// EjectFor. The article's table says L4 balancers do
// only TCP checks and cannot terminate TLS; this one runs the same HTTP
// health checks as the L7 proxy, and Serve accepts a tls.Listener
// (TestTerminatesTLS).
package l4

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
)

// Proxy balances TCP connections over a pool.
type Proxy struct {
	Pool *balancer.Pool
	// Key returns the affinity key of a client connection for hashing
	// algorithms; nil: the client's IP address (source IP hash).
	Key func(net.Addr) string
	// DialTimeout bounds each connect to a backend (0: 2 s).
	DialTimeout time.Duration
	// EjectFor is how long a backend that refused a connection stays out of
	// the pool (0: 10 s; negative: never ejected by the proxy).
	EjectFor time.Duration
	// MaxAttempts bounds the backends one connection tries (0: 3).
	MaxAttempts int

	up, down atomic.Int64 // payload bytes client→backend, backend→client

	mu     sync.Mutex
	ctx    context.Context // ends at Close: cancels dials in progress
	cancel context.CancelFunc
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Bytes returns the payload bytes copied so far, client→backend (up) and
// backend→client (down), counted when a connection ends. Their ratio is what
// Direct Server Return saves: with DSR only "up" crosses the balancer.
func (p *Proxy) Bytes() (up, down int64) { return p.up.Load(), p.down.Load() }

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("l4: proxy closed")

// Serve accepts connections on ln until Close, and proxies each one.
func (p *Proxy) Serve(ln net.Listener) error {
	if !p.track(ln, nil) {
		ln.Close()
		return ErrClosed
	}
	defer p.untrack(ln, nil)
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.isClosed() {
				return ErrClosed
			}
			var ne net.Error
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || (errors.As(err, &ne) && ne.Timeout()) {
				time.Sleep(5 * time.Millisecond) // out of file descriptors: some close soon
				continue
			}
			return err
		}
		if !p.track(nil, c) {
			c.Close()
			return ErrClosed
		}
		p.wg.Go(func() {
			defer p.untrack(nil, c)
			p.handle(c)
		})
	}
}

// Close stops every Serve, closes all proxied connections and waits for
// their goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.cancel != nil {
		p.cancel()
	}
	for ln := range p.lns {
		ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// track registers a listener or a connection (either may be nil) so Close
// can close it; it reports false once the proxy is closed.
func (p *Proxy) track(ln net.Listener, c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.lns == nil {
		p.lns, p.conns = map[net.Listener]struct{}{}, map[net.Conn]struct{}{}
		p.ctx, p.cancel = context.WithCancel(context.Background())
	}
	if ln != nil {
		p.lns[ln] = struct{}{}
	}
	if c != nil {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(ln net.Listener, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.lns, ln)
	delete(p.conns, c)
}

func (p *Proxy) handle(client net.Conn) {
	defer client.Close()
	backend, b, err := p.dial(client.RemoteAddr())
	if err != nil {
		return // the client sees its connection closed; nothing was read from it
	}
	defer b.Done()
	if !p.track(nil, backend) {
		backend.Close()
		return
	}
	defer func() {
		p.untrack(nil, backend)
		backend.Close()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { p.up.Add(pipe(backend, client)) })
	p.down.Add(pipe(client, backend))
	wg.Wait()
}

// pipe copies src to dst until src's EOF, then half-closes dst so its peer
// sees the EOF too; on an error it closes both so the other direction ends.
func pipe(dst, src net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return n
		}
	}
	dst.Close()
	src.Close()
	return n
}

// dial connects to a backend, moving on to another when one refuses.
func (p *Proxy) dial(client net.Addr) (net.Conn, *balancer.Backend, error) {
	key := ""
	if p.Key != nil {
		key = p.Key(client)
	} else if a, ok := client.(*net.TCPAddr); ok {
		key = a.IP.String()
	}
	timeout := p.DialTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	attempts := p.MaxAttempts
	if attempts <= 0 {
		attempts = 3
	}
	var tried []*balancer.Backend
	var lastErr error
	for range attempts {
		b, err := p.Pool.Pick(key, tried...)
		if err != nil {
			return nil, nil, errors.Join(err, lastErr)
		}
		tried = append(tried, b)
		b.Begin()
		ctx, cancel := context.WithTimeout(p.ctx, timeout)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", b.Addr)
		cancel()
		if err == nil {
			p.Pool.Readmit(b) // it accepted: if it was ejected (picked as a last resort), it is back
			return c, b, nil
		}
		b.Done()
		if balancer.Refused(err) {
			p.Pool.Eject(b, cmp.Or(p.EjectFor, 10*time.Second))
		}
		lastErr = err
	}
	return nil, nil, lastErr
}
