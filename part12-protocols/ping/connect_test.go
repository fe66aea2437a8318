package ping

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
)

// startH2C serves h on loopback with HTTP/1.1 and h2c, as NewHTTPServer does.
func startH2C(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = Protocols()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// grpcClient dials addr with grpc-go, the way any gRPC client would.
func grpcClient(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// One port, one handler: the Connect protocol (binary and JSON), gRPC and
// gRPC-Web from connect-go's client, and grpc-go's own client, all get the
// same answer.
func TestOnePortServesEveryProtocol(t *testing.T) {
	protos := make(chan string, 100)
	h := NewHandler(&Service{})
	srv := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
		h.ServeHTTP(w, r)
	}))
	hc := H2CClient()
	defer hc.CloseIdleConnections()
	for _, tt := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect+proto", nil},
		{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := pingv1connect.NewPingServiceClient(hc, srv.URL, tt.opts...)
			resp, err := c.Ping(t.Context(), connect.NewRequest(&pingv1.PingRequest{Message: "hi"}))
			require.NoError(t, err)
			assert.Equal(t, "hi", resp.Msg.GetMessage())
			assert.Positive(t, resp.Msg.GetTimestampMs())

			stream, err := c.StreamPing(t.Context(), connect.NewRequest(&pingv1.StreamPingRequest{Message: "s", Count: 3}))
			require.NoError(t, err)
			var got []string
			for stream.Receive() {
				got = append(got, stream.Msg().GetMessage())
			}
			require.NoError(t, stream.Err())
			require.NoError(t, stream.Close())
			assert.Equal(t, []string{"s #1", "s #2", "s #3"}, got)
			assert.Equal(t, "HTTP/2.0", <-protos, "H2CClient speaks HTTP/2 with prior knowledge")
			assert.Equal(t, "HTTP/2.0", <-protos)
		})
	}
	t.Run("HTTP/1 in the client's Protocols", func(t *testing.T) {
		tr := &http.Transport{Protocols: Protocols()} // HTTP/1.1 and h2c, as the server has them
		defer tr.CloseIdleConnections()
		c := pingv1connect.NewPingServiceClient(&http.Client{Transport: tr}, srv.URL, connect.WithGRPC())
		_, err := c.Ping(t.Context(), connect.NewRequest(&pingv1.PingRequest{Message: "hi"}))
		require.NoError(t, err, "gRPC over HTTP/1.1 still works with net/http on both ends")
		assert.Equal(t, "HTTP/1.1", <-protos, "the transport chose HTTP/1.1 for http://")
	})
	t.Run("grpc-go client", func(t *testing.T) {
		conn := grpcClient(t, srv.Listener.Addr().String())
		resp, err := pingv1.NewPingServiceClient(conn).Ping(t.Context(), &pingv1.PingRequest{Message: "hi"})
		require.NoError(t, err)
		assert.Equal(t, "hi", resp.GetMessage())
		h, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: pingv1connect.PingServiceName})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	})
}

// post sends body to the Connect endpoint as a curl user would.
func post(t *testing.T, url, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
	return resp.StatusCode, out
}

// Bad input on the Connect endpoint gets its code and a message; nothing runs.
func TestConnectBadInput(t *testing.T) {
	srv := startH2C(t, NewHandler(&Service{}))
	url := srv.URL + pingv1connect.PingServicePingProcedure

	code, out := post(t, url, "application/json", []byte(`{"message":"hi"}`))
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hi", out["message"])
	assert.IsType(t, "", out["timestampMs"], "protojson writes int64 as a JSON string")

	for _, tt := range []struct {
		name, contentType string
		body              []byte
		status            int
		code, msg         string
	}{
		{"malformed JSON", "application/json", []byte(`{"message":`), 400, "invalid_argument", "unmarshal"},
		{"wrong JSON type", "application/json", []byte(`{"message":42}`), 400, "invalid_argument", "unmarshal"},
		{"malformed protobuf", "application/proto", []byte{0x0a, 0x05, 'h'}, 400, "invalid_argument", "unmarshal"},
		{"message over the limit", "application/json", []byte(`{"message":"` + strings.Repeat("x", MaxMessageBytes+1) + `"}`), 400, "invalid_argument", "over the limit of 1024"},
		{"body over the limit", "application/json", []byte(`{"message":"` + strings.Repeat("x", MaxRequestBytes) + `"}`), 429, "resource_exhausted", "larger than configured max 65536"},
		{"invalid UTF-8 in protobuf", "application/proto", []byte{0x0a, 0x01, 0xff}, 400, "invalid_argument", "UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, out := post(t, url, tt.contentType, tt.body)
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.code, out["code"])
			assert.Contains(t, out["message"], tt.msg)
		})
	}

	t.Run("unknown method", func(t *testing.T) {
		c := connect.NewClient[pingv1.PingRequest, pingv1.PingResponse](http.DefaultClient, srv.URL+"/ping.v1.PingService/Nope")
		_, err := c.CallUnary(t.Context(), connect.NewRequest(&pingv1.PingRequest{}))
		assert.Equal(t, connect.CodeUnimplemented, connect.CodeOf(err), "%v", err)
		conn := grpcClient(t, srv.Listener.Addr().String())
		err = conn.Invoke(t.Context(), "/ping.v1.PingService/Nope", &pingv1.PingRequest{}, &pingv1.PingResponse{})
		assert.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
	})
}

// The same bad input against grpc-go. A body that is not Protobuf is
// Internal there (grpc-go's choice: "failed to unmarshal the received
// message"), where connect-go says InvalidArgument.
func TestGRPCBadInput(t *testing.T) {
	b := startBufnet(t, &GRPCServer{Svc: &Service{}}, ServerOptions(IdleTimeout)...)
	ctx := t.Context()
	_, err := b.client.Ping(ctx, &pingv1.PingRequest{Message: strings.Repeat("x", MaxMessageBytes+1)})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	_, err = b.client.Ping(ctx, &pingv1.PingRequest{Message: strings.Repeat("x", MaxRequestBytes)})
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	err = b.conn.Invoke(ctx, "/ping.v1.PingService/Nope", &pingv1.PingRequest{}, &pingv1.PingResponse{})
	assert.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
	err = b.conn.Invoke(ctx, pingv1.PingService_Ping_FullMethodName, rawBytes{0x0a, 0x05, 'h'}, &pingv1.PingResponse{}, grpc.ForceCodecV2(rawCodec{}))
	assert.Equal(t, codes.Internal, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "failed to unmarshal")
	s, err := b.client.StreamPing(ctx, &pingv1.StreamPingRequest{Message: "x", Count: MaxStreamCount + 1})
	require.NoError(t, err)
	_, err = s.Recv()
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
}

// Ping's answer is the message, whatever the transport: the Service is
// called with what the client sent.
func TestServiceChecksRequests(t *testing.T) {
	s := &Service{}
	_, err := s.Ping(context.Background(), &pingv1.PingRequest{Message: string([]byte{0xff})})
	assert.ErrorIs(t, err, ErrInvalid)
	for _, r := range []*pingv1.StreamPingRequest{{Count: 0}, {Count: 1001}, {Count: 1, IntervalMs: -1}, {Count: 1, IntervalMs: 10_001}} {
		err := s.StreamPing(context.Background(), r, func(*pingv1.PingResponse) error { return nil })
		assert.ErrorIs(t, err, ErrInvalid, "%v", r)
	}
	resp, err := s.Ping(context.Background(), &pingv1.PingRequest{Message: "ok"})
	require.NoError(t, err)
	assert.True(t, proto.Equal(&pingv1.PingResponse{Message: "ok", TimestampMs: resp.GetTimestampMs()}, resp))
}

// codeRecorder is a server interceptor that records the code of every error
// a streaming handler returns.
type codeRecorder chan connect.Code

func (c codeRecorder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (c codeRecorder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (c codeRecorder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		c <- connect.CodeOf(err)
		return err
	}
}

// A stream that ends because its client left or its deadline passed ends
// with Canceled or DeadlineExceeded on the Connect handler, as it does on
// grpc-go (grpcError), so the server's logs and metrics and the client tell
// a client that left or a deadline from a failure. Before, connectError
// wrapped every error that was not ErrInvalid as Unknown.
func TestConnectStreamEndsWithTheContextsCode(t *testing.T) {
	codes := make(codeRecorder, 1)
	h := NewHandler(&Service{}, connect.WithInterceptors(codes))
	srv := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Deadline") == "" {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 100*time.Millisecond) // the server's own deadline
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	hc := H2CClient()
	defer hc.CloseIdleConnections()
	c := pingv1connect.NewPingServiceClient(hc, srv.URL, connect.WithGRPC())
	long := &pingv1.StreamPingRequest{Message: "s", Count: MaxStreamCount, IntervalMs: MaxIntervalMS}

	ctx, cancel := context.WithCancel(t.Context())
	stream, err := c.StreamPing(ctx, connect.NewRequest(long))
	require.NoError(t, err)
	require.True(t, stream.Receive(), "%v", stream.Err())
	cancel()
	assert.Equal(t, connect.CodeCanceled, <-codes, "the client left")
	_ = stream.Close()

	req := connect.NewRequest(long)
	req.Header().Set("Deadline", "1")
	stream, err = c.StreamPing(t.Context(), req)
	require.NoError(t, err)
	for stream.Receive() {
	}
	assert.Equal(t, connect.CodeDeadlineExceeded, <-codes, "the server's deadline passed")
	assert.Equal(t, connect.CodeDeadlineExceeded, connect.CodeOf(stream.Err()), "and the client is told so: %v", stream.Err())
	_ = stream.Close()
}
