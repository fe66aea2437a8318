package ping

import (
	"context"
	"errors"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
)

// ConnectServer adapts Service to connect-go's generated interface, embedding
// the Unimplemented handler the article's PingServer lacks.
type ConnectServer struct {
	pingv1connect.UnimplementedPingServiceHandler
	Svc *Service
}

// Ping implements pingv1connect.PingServiceHandler.
func (c *ConnectServer) Ping(ctx context.Context, req *connect.Request[pingv1.PingRequest]) (*connect.Response[pingv1.PingResponse], error) {
	resp, err := c.Svc.Ping(ctx, req.Msg)
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(resp), nil
}

// StreamPing implements pingv1connect.PingServiceHandler.
func (c *ConnectServer) StreamPing(ctx context.Context, req *connect.Request[pingv1.StreamPingRequest], stream *connect.ServerStream[pingv1.PingResponse]) error {
	return connectError(c.Svc.StreamPing(ctx, req.Msg, stream.Send))
}

// connectError gives ErrInvalid and the context's errors their codes, as
// grpcError does for grpc-go, so interceptors (logs, metrics) and the client
// see Canceled or DeadlineExceeded rather than Unknown; a *connect.Error (a
// failed Send) keeps its own.
func connectError(err error) error {
	switch {
	case errors.Is(err, ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return err
}

// NewHandler serves PingService over the Connect protocol (JSON or binary
// Protobuf over HTTP/1.1 or HTTP/2: curl-able), gRPC and gRPC-Web, plus the
// gRPC health service and server reflection, on one http.Handler. Serve it
// with NewHTTPServer for gRPC's HTTP/2 without TLS (h2c). Requests over
// MaxRequestBytes are refused with ResourceExhausted.
func NewHandler(svc *Service, opts ...connect.HandlerOption) http.Handler {
	mux := http.NewServeMux()
	opts = append([]connect.HandlerOption{connect.WithReadMaxBytes(MaxRequestBytes)}, opts...)
	mux.Handle(pingv1connect.NewPingServiceHandler(&ConnectServer{Svc: svc}, opts...))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(pingv1connect.PingServiceName)))
	reflector := grpcreflect.NewStaticReflector(pingv1connect.PingServiceName, grpchealth.HealthV1ServiceName)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return mux
}

// Protocols is HTTP/1.1 and HTTP/2 without TLS (h2c). Go 1.24's net/http
// speaks h2c itself, so the article's h2c.NewHandler(mux, &http2.Server{})
// from x/net is not needed; both give gRPC clients HTTP/2 with prior knowledge.
func Protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// NewHTTPServer serves h on plain TCP with HTTP/1.1 and h2c. A client has
// ReadHeaderTimeout to send a request's headers, and a connection idle for
// HTTPIdleTimeout is closed (HTTP/2: after a GOAWAY). There is no ReadTimeout
// or WriteTimeout: they would cut server streams, which last as long as
// their requests ask.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, Protocols: Protocols(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: HTTPIdleTimeout}
}

// HTTPIdleTimeout is how long NewHTTPServer keeps a connection with no
// request in flight.
const HTTPIdleTimeout = 2 * time.Minute

// H2CClient is an http.Client that speaks HTTP/2 without TLS (prior
// knowledge), as a gRPC client must; Connect and gRPC-Web work over it too.
// Its Protocols hold unencrypted HTTP/2 alone: with HTTP/1 also in the set,
// net/http's Transport sends http:// requests over HTTP/1.1.
func H2CClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}
