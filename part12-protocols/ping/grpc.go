package ping

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
)

// GRPCServer adapts Service to grpc-go's generated interface. It embeds
// UnimplementedPingServiceServer by value, as protoc-gen-go-grpc requires: a
// method added to the service later answers Unimplemented instead of breaking
// the build.
type GRPCServer struct {
	pingv1.UnimplementedPingServiceServer
	Svc *Service
}

// Ping implements pingv1.PingServiceServer.
func (g *GRPCServer) Ping(ctx context.Context, req *pingv1.PingRequest) (*pingv1.PingResponse, error) {
	resp, err := g.Svc.Ping(ctx, req)
	return resp, grpcError(err)
}

// StreamPing implements pingv1.PingServiceServer.
func (g *GRPCServer) StreamPing(req *pingv1.StreamPingRequest, stream grpc.ServerStreamingServer[pingv1.PingResponse]) error {
	return grpcError(g.Svc.StreamPing(stream.Context(), req, stream.Send))
}

// grpcError gives an error its gRPC status code.
func grpcError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.FromContextError(err).Err()
}

// ServerOptions are the defaults NewGRPCServer starts from: requests over
// MaxRequestBytes are refused with ResourceExhausted before they are decoded;
// a connection runs at most MaxConcurrentStreams calls at once (grpc-go's
// default is unlimited); a connection idle for IdleTimeout gets a GOAWAY (the
// client dials again on its next call, which the keepalive test counts).
func ServerOptions(idle time.Duration) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRequestBytes),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: idle}),
	}
}

// MaxConcurrentStreams is how many calls one client connection may have
// running at once on NewGRPCServer: net/http's HTTP/2 server's default, so
// both servers allow the same.
const MaxConcurrentStreams = 250

// IdleTimeout is how long a client connection may sit idle before the server
// closes it in the demo's servers.
const IdleTimeout = 5 * time.Minute

// NewGRPCServer returns a grpc-go server with PingService, the standard health
// service (grpc.health.v1, SERVING) and server reflection (what grpcurl lists).
// opts come after ServerOptions(IdleTimeout), so they override it.
func NewGRPCServer(svc *Service, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	s := grpc.NewServer(append(ServerOptions(IdleTimeout), opts...)...)
	pingv1.RegisterPingServiceServer(s, &GRPCServer{Svc: svc})
	h := health.NewServer()
	h.SetServingStatus(pingv1.PingService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return s, h
}
