package ping

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
)

// BenchmarkUnary is one Ping round trip on loopback TCP, one call at a time,
// with the same 16-byte message: impl=ours is grpc-go (the series' library),
// the anchors connect-go speaking gRPC, Connect (binary) and Connect JSON over
// h2c, and encoding/json over net/http's HTTP/1.1 (impl=rest).
func BenchmarkUnary(b *testing.B) {
	svc := &Service{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	gs, _ := NewGRPCServer(svc)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	mux := http.NewServeMux()
	mux.Handle("/", NewHandler(svc))
	mux.Handle(RESTPath, NewRESTHandler(svc))
	srv := startH2C(b, mux)
	req := &pingv1.PingRequest{Message: "hello, protocols"}
	ctx := context.Background()

	conn := grpcClient(b, ln.Addr().String())
	gc := pingv1.NewPingServiceClient(conn)
	calls := []struct {
		impl string
		call func() error
	}{
		{"ours", func() error { _, err := gc.Ping(ctx, req); return err }},
	}
	for _, c := range []struct {
		impl string
		opts []connect.ClientOption
	}{{"connect-grpc", []connect.ClientOption{connect.WithGRPC()}}, {"connect", nil}, {"connect-json", []connect.ClientOption{connect.WithProtoJSON()}}} {
		hc := H2CClient()
		defer hc.CloseIdleConnections()
		cc := pingv1connect.NewPingServiceClient(hc, srv.URL, c.opts...)
		calls = append(calls, struct {
			impl string
			call func() error
		}{c.impl, func() error { _, err := cc.Ping(ctx, connect.NewRequest(req)); return err }})
	}
	rest := &http.Client{Transport: &http.Transport{}}
	defer rest.CloseIdleConnections()
	body, err := json.Marshal(map[string]string{"message": req.GetMessage()})
	require.NoError(b, err)
	calls = append(calls, struct {
		impl string
		call func() error
	}{"rest", func() error {
		resp, err := rest.Post(srv.URL+RESTPath, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out restResponse
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}})
	for _, c := range calls {
		b.Run("impl="+c.impl, func(b *testing.B) {
			require.NoError(b, c.call())
			b.ReportAllocs()
			for b.Loop() {
				if err := c.call(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
