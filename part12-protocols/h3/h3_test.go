package h3

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/quic-go/quic-go/http3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// serveH3 serves the ping handler over HTTP/3 on a loopback port until the
// test ends; before runs on the server before it serves. It returns the
// server's URL and a client that trusts its certificate, and newClient, which
// makes more (each with connections of its own).
func serveH3(t *testing.T, before func(*http3.Server)) (base string, client *http.Client, newClient func() *http.Client) {
	t.Helper()
	cert, roots, err := SelfSigned("127.0.0.1")
	require.NoError(t, err)
	udp, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	srv := NewServer(ping.NewHandler(&ping.Service{}), cert)
	if before != nil {
		before(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(udp) }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close())
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
		assert.NoError(t, udp.Close())
	})
	newClient = func() *http.Client {
		c, tr := NewClient(roots)
		t.Cleanup(func() { assert.NoError(t, tr.Close()) }) // before the server's: cleanups run last first
		return c
	}
	return "https://" + udp.LocalAddr().String(), newClient(), newClient
}

// The ping API over HTTP/3: the same Connect handler, served by quic-go,
// unary, JSON from a plain request, and server streaming.
func TestPingOverHTTP3(t *testing.T) {
	base, client, _ := serveH3(t, nil)
	pc := pingv1connect.NewPingServiceClient(client, base)
	resp, err := pc.Ping(t.Context(), connect.NewRequest(&pingv1.PingRequest{Message: "quic"}))
	require.NoError(t, err)
	assert.Equal(t, "quic", resp.Msg.GetMessage())

	r, err := client.Post(base+pingv1connect.PingServicePingProcedure, "application/json", strings.NewReader(`{"message":"json"}`))
	require.NoError(t, err)
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	require.NoError(t, r.Body.Close())
	assert.Equal(t, "HTTP/3.0", r.Proto)
	assert.Contains(t, string(body), `"message":"json"`)

	stream, err := pc.StreamPing(t.Context(), connect.NewRequest(&pingv1.StreamPingRequest{Message: "s", Count: 3}))
	require.NoError(t, err)
	n := 0
	for stream.Receive() {
		n++
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())
	assert.Equal(t, 3, n, "server streaming works over HTTP/3 too")
}

// CountConns counts the QUIC connections the server accepted: a client keeps
// one for all its calls, a second client opens its own. (The loss
// experiment's "connections" column for HTTP/3 was typed in as 1.)
func TestCountConns(t *testing.T) {
	var conns func() int
	base, _, newClient := serveH3(t, func(srv *http3.Server) { conns = CountConns(srv) })
	for i, calls := range []int{3, 2} {
		pc := pingv1connect.NewPingServiceClient(newClient(), base)
		for range calls {
			_, err := pc.Ping(t.Context(), connect.NewRequest(&pingv1.PingRequest{Message: "c"}))
			require.NoError(t, err)
		}
		assert.EqualValues(t, i+1, conns(), "client %d: one connection for its %d calls", i+1, calls)
	}
}

// TCPProxy delivers every byte, in order, however many segments it delays.
func TestTCPProxyKeepsOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	echoed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			echoed <- err
			return
		}
		_, err = io.Copy(c, c)
		echoed <- err
		_ = c.Close()
	}()
	p, err := NewTCPProxy(ln.Addr().String(), 0.5, time.Millisecond, 1)
	require.NoError(t, err)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	data := make([]byte, 200*Segment)
	_, _ = rand.Read(data)
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		wrote <- err
	}()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.NoError(t, <-wrote)
	assert.True(t, bytes.Equal(data, got), "the bytes came back whole and in order")
	assert.Greater(t, p.Lost(), int64(0))
	assert.GreaterOrEqual(t, p.Sent(), int64(2*200))
	require.NoError(t, c.Close())
	require.NoError(t, <-echoed)
	require.NoError(t, p.Close())
	require.NoError(t, ln.Close())
}

// Through both lossy proxies every call succeeds: QUIC retransmits the
// datagrams UDPProxy drops, and the TCP model only delays.
func TestCallsSurviveLoss(t *testing.T) {
	cfg := Config{Streams: 4, Calls: 10, Loss: 0.05, Stall: 5 * time.Millisecond, MessageBytes: 1000, Seed: 3}
	for _, tr := range Transports {
		t.Run(tr, func(t *testing.T) {
			row, err := Run(t.Context(), tr, cfg)
			require.NoError(t, err)
			assert.Equal(t, 40, row.Calls)
			assert.Zero(t, row.Errors)
			assert.Positive(t, row.Lost, "the proxy lost packets")
			assert.Equal(t, 1, row.Conns, "every stream on one connection")
			assert.LessOrEqual(t, row.P50, row.P99)
		})
	}
}

// BenchmarkLoss is the committed measurement of the article's HTTP/2 vs
// HTTP/3 claim: DefaultConfig (16 concurrent streams of 50 calls, 1000-byte message,
// 2% loss each way, a lost packet 25 ms late) per transport, with the
// quantiles of every call as metrics (ms), and slow-%: the share of calls
// that took Stall or longer, the ones a lost packet held up (noise on a
// loaded machine adds some at 0% loss too).
func BenchmarkLoss(b *testing.B) {
	for _, loss := range []float64{0, DefaultConfig.Loss} {
		for _, tr := range Transports {
			if loss == 0 && tr == "HTTP/3, delayed" {
				continue
			}
			cfg := DefaultConfig
			cfg.Loss = loss
			name := strings.NewReplacer("/", "", ", ", "-", " ", "").Replace(tr)
			b.Run("transport="+name+"/loss="+pct(loss), func(b *testing.B) {
				var all []time.Duration
				slow := 0
				for b.Loop() {
					row, err := Run(b.Context(), tr, cfg)
					require.NoError(b, err)
					require.Zero(b, row.Errors)
					all = append(all, row.Latencies...)
					slow += row.Slow
				}
				slices.Sort(all)
				b.ReportMetric(float64(Quantile(all, 0.5))/1e6, "p50-ms")
				b.ReportMetric(float64(Quantile(all, 0.99))/1e6, "p99-ms")
				b.ReportMetric(100*float64(slow)/float64(len(all)), "slow-%")
			})
		}
	}
}

func pct(f float64) string { return fmt.Sprintf("%gpct", f*100) }

// The article lists HTTP/3 among gRPC's transports. grpc-go speaks HTTP/2
// only; connect-go's gRPC protocol needs HTTP trailers, which quic-go's
// HTTP/3 carries, so the same handler answers gRPC over QUIC too.
func TestGRPCProtocolOverHTTP3(t *testing.T) {
	base, client, _ := serveH3(t, nil)
	pc := pingv1connect.NewPingServiceClient(client, base, connect.WithGRPC())
	resp, err := pc.Ping(t.Context(), connect.NewRequest(&pingv1.PingRequest{Message: "grpc over quic"}))
	require.NoError(t, err)
	assert.Equal(t, "grpc over quic", resp.Msg.GetMessage())
	_, err = pc.Ping(t.Context(), connect.NewRequest(&pingv1.PingRequest{Message: strings.Repeat("x", ping.MaxMessageBytes+1)}))
	assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "the status comes back in the trailers: %v", err)
}
