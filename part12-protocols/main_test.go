package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/quic-go/quic-go/http3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/internal/cli/clitest"
	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/internal/stack"
	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// quick keeps the experiments short; the defaults are for readers.
var quick = []string{"-calls", "20", "-loss-calls", "3"}

// Every mode runs with no services and prints the lines a reader checks
// against the article.
func TestEveryModeWithoutServices(t *testing.T) {
	t.Setenv(stack.EnvPostgres, "postgres://u:p@127.0.0.1:1/db")
	for _, tt := range []struct {
		mode  string
		check func(t *testing.T, out string)
	}{
		{"serialization", func(t *testing.T, out string) {
			for _, f := range []string{"google.golang.org/protobuf (proto)", "encoding/json", "google.golang.org/protobuf (protojson)"} {
				r := clitest.Row(t, out, f)
				require.Len(t, r, 6, "%q", r)
			}
			assert.Equal(t, "69 bytes", clitest.Row(t, out, "google.golang.org/protobuf (proto)")[5])
			assert.Equal(t, "173 bytes", clitest.Row(t, out, "encoding/json")[5])
			assert.Contains(t, out, "payload 60% smaller")
			assert.Contains(t, out, "the article's table:            marshal 8.3x, unmarshal 10.6x faster, payload 77% smaller")
		}},
		{"wire", func(t *testing.T, out string) {
			assert.Contains(t, out, "varint 300: ac 02 = 10101100 00000010")
			assert.Contains(t, out, "varint 3: 03 = 00000011")
			assert.Contains(t, out, `   0  0a       field 1  LEN(2)  len 4  "pong"`)
			assert.Contains(t, out, "timestamp_ms: -1 takes 11 bytes")
		}},
		{"graphql", func(t *testing.T, out string) {
			assert.Contains(t, out, "PostgreSQL: not reachable")
			assert.Contains(t, out, "the in-memory stand-in counts its calls instead of statements")
			checkGraphQL(t, out, "calls to the in-memory store")
		}},
		{"loss", func(t *testing.T, out string) {
			for _, r := range [][]string{{"HTTP/2", "0%"}, {"HTTP/3, dropped", "0%"}, {"HTTP/2", "2%"}, {"HTTP/3, dropped", "2%"}, {"HTTP/3, delayed", "2%"}} {
				row := clitest.Row(t, out, r...)
				require.Len(t, row, 10, "%q", row)
				assert.Equal(t, []string{"1", "48", "0"}, row[3:6], "%s: one connection, 16 × 3 calls, no errors", r)
			}
			assert.True(t, strings.HasPrefix(clitest.Row(t, out, "HTTP/2", "0%")[2], "0 of "), "no loss without loss")
		}},
		{"protocols", func(t *testing.T, out string) {
			for _, p := range [][]string{
				{"gRPC (grpc-go)", "HTTP/2 h2c", "protobuf", "23 B"},
				{"gRPC (connect-go)", "HTTP/2 h2c", "protobuf", "23 B"},
				{"gRPC-Web (connect-go)", "HTTP/1.1", "protobuf", "23 B"},
				{"Connect", "HTTP/2 h2c", "protobuf", "18 B"},
				{"Connect", "HTTP/1.1", "JSON (protojson)", "30 B"},
				{"Connect", "HTTP/3 (QUIC)", "protobuf", "18 B"},
				{"REST", "HTTP/1.1", "JSON (encoding/json)", "30 B"},
				{"GraphQL", "HTTP/1.1", "JSON (query)"},
			} {
				r := clitest.Row(t, out, p...)
				assert.Len(t, r, 7, "%q", r)
			}
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), append([]string{"-mode", tt.mode}, quick...), &out))
			assert.Equal(t, 1, strings.Count("\n"+out.String(), "\n== "), "one section")
			tt.check(t, out.String())
		})
	}
}

// checkGraphQL checks -mode graphql's lines: the costs, the refusal, the
// N+1 counted exactly and the DataLoader's count (one per level when the
// 5 ms window caught every resolver; a loaded machine may split a level).
func checkGraphQL(t *testing.T, out, counted string) {
	t.Helper()
	assert.Equal(t, "101", clitest.Row(t, out, "{ users(limit: 100) { posts(limit: 100) { id } } }")[1])
	assert.Equal(t, "10101", clitest.Row(t, out, "{ users(limit: 100) { posts(limit: 100) { comments { id } } } }")[1])
	assert.Contains(t, out, "the article's query, sent: operation has complexity 1210101, which exceeds the limit of 500")
	assert.Contains(t, out, counted)
	assert.Equal(t, "421", clitest.Row(t, out, "one query per parent (N+1)")[1])
	n, err := strconv.Atoi(clitest.Row(t, out, "DataLoader, 5 ms wait (the article's)")[1])
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 4)
	assert.Less(t, n, 421)
}

// Command-line mistakes are usage errors: a message and the usage on stderr,
// nothing on stdout, exit status 2.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-mode", "bogus"}, `unknown -mode "bogus"`},
		{[]string{"stray"}, `unexpected argument "stray" (the only subcommand is serve, and it comes first)`},
		{[]string{"-calls", "9"}, "-calls 9 is out of range 10..1000000"},
		{[]string{"-calls", "many"}, `invalid value "many" for flag -calls`},
		{[]string{"-loss-calls", "0"}, "-loss-calls 0 is out of range 1..10000"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"serve", "extra"}, `serve: unexpected argument "extra"`},
		{[]string{"serve", "-addr", ""}, "serve: -addr is empty"},
		{[]string{"serve", "-grpc-addr", ""}, "serve: -grpc-addr is empty"},
		{[]string{"serve", "-mode", "wire"}, "flag provided but not defined: -mode"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clitest.UsageError(t, "part12-protocols", run, tt.args, tt.msg)
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout)
		assert.ErrorIs(t, err, flag.ErrHelp)
		assert.Equal(t, 0, cli.Exit("part12-protocols", err, &stderr))
		assert.Empty(t, stderr.String())
		assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part12-protocols "))
		for _, m := range modes {
			assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String(), "-h lists mode %s", m.Name)
		}
		for _, f := range []string{"-mode", "-calls", "-loss-calls", "-addr", "-grpc-addr", "serve flags:"} {
			assert.Contains(t, stdout.String(), f)
		}
	}
}

// served is where `serve` listens and the commands it prints.
type served struct {
	httpAddr, grpcAddr, h3Addr string
	commands                   []string // the curl and grpcurl lines, as printed
}

// serveAddrs starts `serve` on free ports and reads what it prints up to its
// last line, the grpcurl command.
func serveAddrs(t *testing.T, ctx context.Context, done chan error) served {
	t.Helper()
	out := make(clitest.Lines, 64) // room for every line serve prints: it never blocks
	go func() {
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0"}, out)
	}()
	var s served
	for {
		select {
		case line := <-out:
			if _, rest, ok := strings.Cut(line, "grpc-go:"); ok {
				s.grpcAddr = strings.Fields(rest)[0]
			}
			if _, rest, ok := strings.Cut(line, "HTTP/3 (Connect, REST, GraphQL):"); ok {
				s.h3Addr = strings.TrimPrefix(strings.Fields(rest)[0], "https://")
			}
			if _, rest, ok := strings.Cut(line, "REST:"); ok {
				s.httpAddr = strings.TrimPrefix(strings.Fields(rest)[0], "http://")
			}
			if cmd := strings.TrimSpace(line); strings.HasPrefix(cmd, "curl ") || strings.HasPrefix(cmd, "go ") {
				s.commands = append(s.commands, cmd)
			}
			if strings.Contains(line, "tool grpcurl") {
				require.NotEmpty(t, s.httpAddr)
				require.NotEmpty(t, s.grpcAddr)
				require.NotEmpty(t, s.h3Addr)
				return s
			}
		case err := <-done:
			require.FailNow(t, "serve exited early", "%v", err)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "serve did not say where it listens")
		}
	}
}

// TestServeStopsOnCancel plays Ctrl-C: both servers answer, then run returns
// nil once its context ends, leaving no goroutine behind.
func TestServeStopsOnCancel(t *testing.T) {
	t.Setenv(stack.EnvPostgres, "postgres://u:p@127.0.0.1:1/db")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	s := serveAddrs(t, ctx, done)
	httpAddr, grpcAddr, h3Addr := s.httpAddr, s.grpcAddr, s.h3Addr

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	r, err := pingv1.NewPingServiceClient(conn).Ping(t.Context(), &pingv1.PingRequest{Message: "a"})
	require.NoError(t, err)
	assert.Equal(t, "a", r.GetMessage())

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	cr, err := pingv1connect.NewPingServiceClient(hc, "http://"+httpAddr, connect.WithProtoJSON()).Ping(t.Context(), connect.NewRequest(&pingv1.PingRequest{Message: "b"}))
	require.NoError(t, err)
	assert.Equal(t, "b", cr.Msg.GetMessage())

	q := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the demo's self-signed certificate
	defer q.Close()
	qr, err := pingv1connect.NewPingServiceClient(&http.Client{Transport: q}, "https://"+h3Addr).Ping(t.Context(), connect.NewRequest(&pingv1.PingRequest{Message: "c"}))
	require.NoError(t, err, "HTTP/3 on the same port number, over UDP")
	assert.Equal(t, "c", qr.Msg.GetMessage())

	stopServe(t, cancel, done)
}

// stopServe plays Ctrl-C and waits for serve to return nil.
func stopServe(t *testing.T, cancel context.CancelFunc, done chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(30 * time.Second):
		require.FailNow(t, "serve did not stop after cancel")
	}
}
