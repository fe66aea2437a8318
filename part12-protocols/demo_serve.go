package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// serve keeps the servers up on o.addr and o.grpcAddr until ctx ends
// (Ctrl-C), then drains in-flight calls for up to five seconds.
func serve(ctx context.Context, w io.Writer, o options) error {
	gs, err := openGraphStore(ctx, w)
	if err != nil {
		return err
	}
	defer gs.close()
	s, err := startServers(&ping.Service{}, gs.store, o.grpcAddr, o.addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "serving — Ctrl-C stops\n")
	fmt.Fprintf(w, "  grpc-go:                          %s (health, reflection)\n", s.grpcAddr)
	fmt.Fprintf(w, "  Connect, gRPC, gRPC-Web, REST:    http://%s (h2c; health, reflection)\n", s.httpAddr)
	fmt.Fprintf(w, "  HTTP/3 (Connect, REST, GraphQL):  https://%s (UDP, self-signed certificate: curl --http3 -k)\n", s.udp.LocalAddr())
	fmt.Fprintf(w, "  GraphQL:                          http://%s%s (%s)\n", s.httpAddr, GraphQLPath, gs.what)
	fmt.Fprintf(w, "  curl -s -H 'Content-Type: application/json' -d '{\"message\":\"hi\"}' http://%s%s\n", s.httpAddr, pingv1connect.PingServicePingProcedure)
	fmt.Fprintf(w, "  curl -s -H 'Content-Type: application/json' -d '{\"message\":\"hi\"}' http://%s%s\n", s.httpAddr, ping.RESTPath)
	fmt.Fprintf(w, "  curl -s -H 'Content-Type: application/json' -d '{\"query\":\"{ users(limit: 2) { name posts(limit: 2) { title } } }\"}' http://%s%s\n", s.httpAddr, GraphQLPath)
	fmt.Fprintf(w, "  go -C part12-protocols/proto tool grpcurl -plaintext %s list\n", s.grpcAddr)
	<-ctx.Done()
	const drain = 5 * time.Second
	cut, err := s.stop(drain)
	if err != nil {
		return err
	}
	if cut {
		fmt.Fprintf(w, "stopped (calls still running after %s were cut)\n", drain)
		return nil
	}
	fmt.Fprintln(w, "stopped")
	return nil
}
