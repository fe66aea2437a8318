package ping

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
)

// bufnet is a gRPC server on an in-memory listener (the article's 1 MiB
// bufconn) and a client that counts the connections it dials.
type bufnet struct {
	srv    *grpc.Server
	conn   *grpc.ClientConn
	client pingv1.PingServiceClient
	dials  atomic.Int32
}

// startBufnet serves impl on bufconn with opts and connects a client with
// grpc.NewClient and a passthrough target: NewClient's default scheme is dns,
// which would look "bufnet" up as a host name.
func startBufnet(t *testing.T, impl pingv1.PingServiceServer, opts ...grpc.ServerOption) *bufnet {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	b := &bufnet{srv: grpc.NewServer(opts...)}
	pingv1.RegisterPingServiceServer(b.srv, impl)
	served := make(chan error, 1)
	go func() { served <- b.srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			b.dials.Add(1)
			return lis.DialContext(ctx)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	require.NoError(t, err)
	b.conn, b.client = conn, pingv1.NewPingServiceClient(conn)
	t.Cleanup(func() {
		_ = conn.Close()
		b.srv.Stop()
		assert.NoError(t, <-served)
	})
	return b
}

// The article's scenario: the server closes a connection idle for 200 ms;
// the second Ping, 300 ms later, succeeds on a second connection that
// grpc-go dialled by itself. (The article expects it to fail: erratum
// TestArticleKeepaliveTestExpectsAnError.) In a synctest bubble the 300 ms
// pass on a fake clock, and only once every goroutine is blocked.
func TestKeepaliveIdleRedials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBufnet(t, &GRPCServer{Svc: &Service{}}, ServerOptions(200*time.Millisecond)...)
		_, err := b.client.Ping(t.Context(), &pingv1.PingRequest{Message: "ping"})
		require.NoError(t, err)
		assert.EqualValues(t, 1, b.dials.Load(), "first call dials once")

		time.Sleep(300 * time.Millisecond) // past MaxConnectionIdle: the server sends GOAWAY
		_, err = b.client.Ping(t.Context(), &pingv1.PingRequest{Message: "ping"})
		require.NoError(t, err, "grpc-go redials transparently after an idle GOAWAY")
		assert.EqualValues(t, 2, b.dials.Load(), "a second connection was dialled")

		_, err = b.client.Ping(t.Context(), &pingv1.PingRequest{Message: "ping"})
		require.NoError(t, err)
		assert.EqualValues(t, 2, b.dials.Load(), "a busy connection is kept")
	})
}

// slow answers once its context ends, and reports why.
type slow struct {
	pingv1.UnimplementedPingServiceServer
	started  chan struct{}
	ended    chan error
	deadline time.Time
}

func (s *slow) Ping(ctx context.Context, _ *pingv1.PingRequest) (*pingv1.PingResponse, error) {
	s.deadline, _ = ctx.Deadline()
	close(s.started)
	<-ctx.Done()
	s.ended <- ctx.Err()
	return nil, ctx.Err()
}

// A client deadline travels to the server (grpc-timeout header): the call
// ends with DeadlineExceeded and the handler's context ends too.
func TestDeadlinePropagates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &slow{started: make(chan struct{}), ended: make(chan error, 1)}
		b := startBufnet(t, s)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.client.Ping(ctx, &pingv1.PingRequest{Message: "ping"})
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
		assert.Equal(t, 50*time.Millisecond, time.Since(start), "the fake clock: exactly the deadline")
		// Both sides' timers fire at the same instant: the server's context
		// ends by its own deadline or by the client's RST_STREAM, whichever
		// comes first. What travelled is the deadline itself.
		assert.Error(t, <-s.ended, "the server's context ended")
		assert.Equal(t, start.Add(50*time.Millisecond), s.deadline, "the server's context carried the client's deadline")
	})
}

// Cancelling the client's context cancels the server's: the call ends with
// Canceled and the handler sees context.Canceled.
func TestCancellationPropagates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &slow{started: make(chan struct{}), ended: make(chan error, 1)}
		b := startBufnet(t, s)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := b.client.Ping(ctx, &pingv1.PingRequest{Message: "ping"})
			errc <- err
		}()
		<-s.started
		cancel()
		assert.Equal(t, codes.Canceled, status.Code(<-errc))
		assert.ErrorIs(t, <-s.ended, context.Canceled)
	})
}

// countingSend wraps the server's stream to count messages sent.
type countingServer struct {
	GRPCServer
	sent    atomic.Int32
	ended   chan error
	onStart func() // when set, called as each stream starts
}

func (c *countingServer) StreamPing(req *pingv1.StreamPingRequest, stream grpc.ServerStreamingServer[pingv1.PingResponse]) error {
	if c.onStart != nil {
		c.onStart()
	}
	err := c.Svc.StreamPing(stream.Context(), req, func(r *pingv1.PingResponse) error {
		c.sent.Add(1)
		return stream.Send(r)
	})
	c.ended <- err
	return grpcError(err)
}

func TestServerStreaming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &countingServer{GRPCServer: GRPCServer{Svc: &Service{}}, ended: make(chan error, 1)}
		b := startBufnet(t, srv)
		start := time.Now()
		stream, err := b.client.StreamPing(t.Context(), &pingv1.StreamPingRequest{Message: "hi", Count: 5, IntervalMs: 100})
		require.NoError(t, err)
		var got []string
		for {
			r, err := stream.Recv()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			got = append(got, r.GetMessage())
		}
		assert.Equal(t, []string{"hi #1", "hi #2", "hi #3", "hi #4", "hi #5"}, got, "in order")
		assert.Equal(t, 400*time.Millisecond, time.Since(start), "four intervals between five answers")
		assert.NoError(t, <-srv.ended)
	})
}

// A client that stops reading and cancels ends the server's loop: it sends
// no more than it had sent when the client left.
func TestStreamStopsWhenTheClientLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &countingServer{GRPCServer: GRPCServer{Svc: &Service{}}, ended: make(chan error, 1)}
		b := startBufnet(t, srv)
		ctx, cancel := context.WithCancel(t.Context())
		stream, err := b.client.StreamPing(ctx, &pingv1.StreamPingRequest{Message: "hi", Count: 1000, IntervalMs: 10})
		require.NoError(t, err)
		for range 3 {
			_, err := stream.Recv()
			require.NoError(t, err)
		}
		cancel()
		assert.ErrorIs(t, <-srv.ended, context.Canceled)
		assert.Less(t, srv.sent.Load(), int32(10), "the server stopped within an interval or so of the cancel, not after 1000")
	})
}

// One client connection runs at most MaxConcurrentStreams calls at once on
// NewGRPCServer's options, as net/http's HTTP/2 server (Connect, gRPC-Web)
// allows 250: a further call waits for one to end. grpc-go's own default
// is unlimited, so one connection could hold any number of StreamPings, each
// a goroutine and a ticker for up to 1,000 intervals of 10 s.
func TestConcurrentStreamsPerConnectionAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &countingServer{GRPCServer: GRPCServer{Svc: &Service{}}, ended: make(chan error, MaxConcurrentStreams+1)}
		b := startBufnet(t, srv, ServerOptions(IdleTimeout)...)
		var started atomic.Int32
		srv.onStart = func() { started.Add(1) }
		ctx, cancel := context.WithCancel(t.Context())
		long := &pingv1.StreamPingRequest{Message: "s", Count: MaxStreamCount, IntervalMs: MaxIntervalMS}
		for range MaxConcurrentStreams {
			s, err := b.client.StreamPing(ctx, long)
			require.NoError(t, err)
			_, err = s.Recv()
			require.NoError(t, err)
		}
		over, overCancel := context.WithTimeout(ctx, time.Second)
		s, err := b.client.StreamPing(over, long)
		if err == nil {
			_, err = s.Recv()
		}
		overCancel()
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "the call over the limit waited: %v", err)
		assert.EqualValues(t, MaxConcurrentStreams, started.Load(), "the server never started it")
		cancel()
		for range started.Load() {
			assert.ErrorIs(t, <-srv.ended, context.Canceled)
		}
	})
}

// bufListener is a bufconn listener and a function that dials it with grpc-go.
func bufListener(t *testing.T) (*bufconn.Listener, func(t *testing.T) *grpc.ClientConn) {
	lis := bufconn.Listen(1 << 20)
	return lis, func(t *testing.T) *grpc.ClientConn {
		conn, err := grpc.NewClient("passthrough:///bufnet",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
}

// serve runs s on lis until the test ends.
func serve(t *testing.T, s *grpc.Server, lis net.Listener) {
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Stop()
		assert.NoError(t, <-served)
	})
}
