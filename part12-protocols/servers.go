package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go/http3"
	"google.golang.org/grpc"

	"github.com/sysdesign-masterclass/golang/part12-protocols/graph"
	"github.com/sysdesign-masterclass/golang/part12-protocols/h3"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// countingListener counts the bytes every accepted connection reads and
// writes: what a call costs on the wire, headers and framing included.
type countingListener struct {
	net.Listener
	read, written atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

// total is the bytes both ways so far.
func (l *countingListener) total() int64 { return l.read.Load() + l.written.Load() }

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.l.written.Add(int64(n))
	return n, err
}

// servers are the chapter's servers on loopback (or the addresses serve
// names): grpc-go on one port; Connect, gRPC, gRPC-Web and REST on another.
type servers struct {
	grpcAddr, httpAddr string
	grpcLn, httpLn     *countingListener
	grpc               *grpc.Server
	http               *http.Server
	h3                 *http3.Server
	udp                *countingPacketConn // HTTP/3: httpAddr's port number on UDP when it was free
	roots              *x509.CertPool      // trusts the HTTP/3 server's self-signed certificate
	done               chan error
}

// countingPacketConn counts the bytes of the datagrams the HTTP/3 server
// reads and writes.
type countingPacketConn struct {
	net.PacketConn
	read, written atomic.Int64
}

func (c *countingPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(p)
	c.read.Add(int64(n))
	return n, a, err
}

func (c *countingPacketConn) WriteTo(p []byte, a net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, a)
	c.written.Add(int64(n))
	return n, err
}

func (c *countingPacketConn) total() int64 { return c.read.Load() + c.written.Load() }

// SetReadBuffer, SetWriteBuffer and SyscallConn let quic-go size the
// socket's buffers as it does on a bare *net.UDPConn (it warns otherwise).
func (c *countingPacketConn) SetReadBuffer(n int) error {
	return c.PacketConn.(*net.UDPConn).SetReadBuffer(n)
}

func (c *countingPacketConn) SetWriteBuffer(n int) error {
	return c.PacketConn.(*net.UDPConn).SetWriteBuffer(n)
}

func (c *countingPacketConn) SyscallConn() (syscall.RawConn, error) {
	return c.PacketConn.(*net.UDPConn).SyscallConn()
}

// GraphQLPath is where the servers answer GraphQL.
const GraphQLPath = "/graphql"

// startServers listens on grpcAddr and httpAddr and serves until stop; store
// is what GraphQL reads.
func startServers(svc *ping.Service, store graph.Store, grpcAddr, httpAddr string) (*servers, error) {
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("grpc listener: %w", err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		_ = gl.Close()
		return nil, fmt.Errorf("http listener: %w", err)
	}
	s := &servers{
		grpcLn: &countingListener{Listener: gl}, httpLn: &countingListener{Listener: hl},
		done: make(chan error, 3),
	}
	s.grpcAddr, s.httpAddr = gl.Addr().String(), hl.Addr().String()
	udp, err := h3.Listen(s.httpAddr) // HTTP/3 on the same port number, over UDP
	if err != nil && strings.HasSuffix(httpAddr, ":0") {
		// the port the kernel gave TCP is taken on UDP: any free one will do
		host, _, _ := net.SplitHostPort(s.httpAddr)
		udp, err = h3.Listen(net.JoinHostPort(host, "0"))
	}
	if err != nil {
		_, _ = gl.Close(), hl.Close()
		return nil, fmt.Errorf("http/3 listener: %w", err)
	}
	host, _, _ := net.SplitHostPort(s.httpAddr)
	cert, roots, err := h3.SelfSigned(host, "localhost")
	if err != nil {
		_, _, _ = gl.Close(), hl.Close(), udp.Close()
		return nil, err
	}
	s.udp, s.roots = &countingPacketConn{PacketConn: udp}, roots
	s.grpc, _ = ping.NewGRPCServer(svc)
	mux := http.NewServeMux()
	mux.Handle("/", ping.NewHandler(svc))
	mux.Handle(ping.RESTPath, ping.NewRESTHandler(svc))
	mux.Handle(GraphQLPath, graph.NewHandler(graph.Options{Store: store, Ping: svc}))
	s.http = ping.NewHTTPServer(mux)
	s.h3 = h3.NewServer(mux, cert)
	go func() { s.done <- s.grpc.Serve(s.grpcLn) }()
	go func() { s.done <- s.http.Serve(s.httpLn) }()
	go func() { s.done <- s.h3.Serve(s.udp) }()
	return s, nil
}

// stop drains the servers for up to drain: they refuse new calls and let
// running ones finish. Calls still running then (a stream can last up to
// 1,000 intervals of 10 s) are cut: their connections are closed, so their
// handlers' contexts end. cut reports whether any were.
func (s *servers) stop(drain time.Duration) (cut bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	var drained sync.WaitGroup
	var httpErr, h3Err error
	drained.Go(func() { httpErr = s.http.Shutdown(ctx) })
	drained.Go(func() { h3Err = s.h3.Shutdown(ctx) }) // closes what is left when ctx ends
	drained.Wait()
	if errors.Is(httpErr, context.DeadlineExceeded) {
		cut, httpErr = true, s.http.Close()
	}
	if errors.Is(h3Err, context.DeadlineExceeded) {
		cut, h3Err = true, nil
	}
	select {
	case <-stopped:
	case <-ctx.Done():
		cut = true
		s.grpc.Stop()
		<-stopped
	}
	err = errors.Join(httpErr, h3Err, s.h3.Close())
	for range 3 {
		if e := <-s.done; e != nil && !errors.Is(e, http.ErrServerClosed) && !errors.Is(e, grpc.ErrServerStopped) {
			err = errors.Join(err, e)
		}
	}
	return cut, errors.Join(err, s.udp.Close())
}
