package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/sysdesign-masterclass/golang/part12-protocols/graph"
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
	done               chan error
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
		done: make(chan error, 2),
	}
	s.grpcAddr, s.httpAddr = gl.Addr().String(), hl.Addr().String()
	s.grpc, _ = ping.NewGRPCServer(svc)
	mux := http.NewServeMux()
	mux.Handle("/", ping.NewHandler(svc))
	mux.Handle(ping.RESTPath, ping.NewRESTHandler(svc))
	mux.Handle(GraphQLPath, graph.NewHandler(graph.Options{Store: store, Ping: svc}))
	s.http = ping.NewHTTPServer(mux)
	go func() { s.done <- s.grpc.Serve(s.grpcLn) }()
	go func() { s.done <- s.http.Serve(s.httpLn) }()
	return s, nil
}

// stop drains both servers for up to drain, then closes what is left.
func (s *servers) stop(drain time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	err := s.http.Shutdown(ctx)
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
	}
	for range 2 {
		if e := <-s.done; e != nil && !errors.Is(e, http.ErrServerClosed) && !errors.Is(e, grpc.ErrServerStopped) {
			err = errors.Join(err, e)
		}
	}
	return err
}
