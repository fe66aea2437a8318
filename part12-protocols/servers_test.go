package main

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
	"github.com/sysdesign-masterclass/golang/part12-protocols/graph"
	"github.com/sysdesign-masterclass/golang/part12-protocols/h3"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// A stream still open when the drain time is up is cut, on every server:
// grpc-go, h2c (Connect) and HTTP/3. stop then reports it and returns
// without an error, and every client's stream ends. Before, the h2c and
// HTTP/3 servers' Shutdown returned "context deadline exceeded" and left
// their streams running (up to 1,000 answers 10 s apart).
func TestStopCutsStreamsLeftAfterTheDrain(t *testing.T) {
	s, err := startServers(&ping.Service{}, graph.NewMemory(graph.Shape{}), "127.0.0.1:0", "127.0.0.1:0")
	require.NoError(t, err)
	long := &pingv1.StreamPingRequest{Message: "long", Count: ping.MaxStreamCount, IntervalMs: ping.MaxIntervalMS}
	ended := make(chan error, 3)

	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	gs, err := pingv1.NewPingServiceClient(conn).StreamPing(t.Context(), long)
	require.NoError(t, err)
	_, err = gs.Recv()
	require.NoError(t, err)
	go func() {
		for {
			if _, err := gs.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()

	hc := ping.H2CClient()
	defer hc.CloseIdleConnections()
	quic, qt := h3.NewClient(s.roots)
	defer qt.Close()
	for _, c := range []pingv1connect.PingServiceClient{
		pingv1connect.NewPingServiceClient(hc, "http://"+s.httpAddr),
		pingv1connect.NewPingServiceClient(quic, "https://"+s.udp.LocalAddr().String()),
	} {
		cs, err := c.StreamPing(t.Context(), connect.NewRequest(long))
		require.NoError(t, err)
		require.True(t, cs.Receive(), "%v", cs.Err())
		go func() {
			for cs.Receive() {
			}
			ended <- cs.Err()
			_ = cs.Close()
		}()
	}

	type result struct {
		cut bool
		err error
	}
	stopped := make(chan result, 1)
	go func() {
		cut, err := s.stop(100 * time.Millisecond)
		stopped <- result{cut, err}
	}()
	select {
	case r := <-stopped:
		assert.NoError(t, r.err)
		assert.True(t, r.cut, "stop says it cut calls")
	case <-time.After(time.Minute):
		require.FailNow(t, "stop did not return")
	}
	for range 3 {
		select {
		case err := <-ended:
			assert.Error(t, err, "the stream was cut: it ended with an error")
		case <-time.After(time.Minute):
			require.FailNow(t, "a stream outlived its server")
		}
	}
}
