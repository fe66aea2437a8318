//go:build integration

package ping

import (
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
)

// The real-client tests run the programs a reader would type: curl (the
// machine's) and grpcurl and buf curl (pinned in ../proto/go.mod, built by
// `go tool` on first use).

// command runs name with args for up to five minutes (the first `go tool`
// run builds grpcurl) and returns its standard output.
func command(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), &exitError{err: ee, stderr: string(ee.Stderr)}
	}
	return string(out), err
}

type exitError struct {
	err    *exec.ExitError
	stderr string
}

func (e *exitError) Error() string { return e.err.Error() + ": " + e.stderr }

// tool runs a tool of ../proto/go.mod.
func tool(t *testing.T, args ...string) (string, error) {
	return command(t, "../proto", "go", append([]string{"tool"}, args...)...)
}

// curl runs the machine's curl, which the test needs.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		stack.SkipOrFail(t, "curl is not installed (apt-get install curl)")
	}
	return command(t, ".", "curl", append([]string{"-sS", "--max-time", "30"}, args...)...)
}

// startGRPC serves NewGRPCServer on a loopback port.
func startGRPC(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s, _ := NewGRPCServer(&Service{})
	serve(t, s, ln)
	return ln.Addr().String()
}

func TestCurlConnectJSON(t *testing.T) {
	srv := startH2C(t, NewHandler(&Service{}))
	url := srv.URL + pingv1connect.PingServicePingProcedure

	out, err := curl(t, "-H", "Content-Type: application/json", "-d", `{"message":"from curl"}`, url)
	require.NoError(t, err)
	var resp struct {
		Message     string `json:"message"`
		TimestampMs string `json:"timestampMs"` // protojson: int64 as a string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &resp), "%s", out)
	assert.Equal(t, "from curl", resp.Message)
	assert.NotEmpty(t, resp.TimestampMs)

	out, err = curl(t, "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "-d", `{"message":`, url)
	require.NoError(t, err)
	assert.Contains(t, out, `"code":"invalid_argument"`)
	assert.True(t, strings.HasSuffix(out, "\n400"), "%s", out)

	out, err = curl(t, "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "-d", `{}`, srv.URL+"/ping.v1.PingService/Nope")
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(out, "\n404"), "an unknown method is a 404 on the Connect protocol: %s", out)

	out, err = curl(t, "--http2-prior-knowledge", "-H", "Content-Type: application/json", "-d", `{"message":"h2c"}`, url)
	require.NoError(t, err)
	assert.Contains(t, out, `"message":"h2c"`, "the same endpoint over h2c")
}

func TestCurlREST(t *testing.T) {
	srv := startH2C(t, NewRESTHandler(&Service{}))
	out, err := curl(t, "-H", "Content-Type: application/json", "-d", `{"message":"rest"}`, srv.URL+RESTPath)
	require.NoError(t, err)
	assert.Contains(t, out, `"message":"rest"`)
	out, err = curl(t, "-w", "%{http_code}", "-o", "/dev/null", "-H", "Content-Type: application/json", "-d", `{"message":"rest","extra":1}`, srv.URL+RESTPath)
	require.NoError(t, err)
	assert.Equal(t, "400", out, "unknown fields are refused")
	out, err = curl(t, "-w", "%{http_code}", "-o", "/dev/null", "-d", `{"message":"rest"}`, srv.URL+RESTPath)
	require.NoError(t, err)
	assert.Equal(t, "415", out, "curl -d sends a form's Content-Type")
}

// grpcurl lists the services through reflection, describes Ping and calls it,
// against grpc-go and against the Connect handler.
func TestGrpcurl(t *testing.T) {
	h2c := startH2C(t, NewHandler(&Service{}))
	for name, addr := range map[string]string{
		"grpc-go":    startGRPC(t),
		"connect-go": strings.TrimPrefix(h2c.URL, "http://"),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := tool(t, "grpcurl", "-plaintext", addr, "list")
			require.NoError(t, err)
			assert.Contains(t, out, "ping.v1.PingService\n")
			assert.Contains(t, out, "grpc.health.v1.Health\n")

			out, err = tool(t, "grpcurl", "-plaintext", addr, "describe", "ping.v1.PingRequest")
			require.NoError(t, err)
			assert.Contains(t, out, "string message = 1;")

			out, err = tool(t, "grpcurl", "-plaintext", "-d", `{"message":"from grpcurl"}`, addr, "ping.v1.PingService/Ping")
			require.NoError(t, err)
			assert.Contains(t, out, `"message": "from grpcurl"`)

			out, err = tool(t, "grpcurl", "-plaintext", "-d", `{"message":"s","count":3}`, addr, "ping.v1.PingService/StreamPing")
			require.NoError(t, err)
			assert.Equal(t, 3, strings.Count(out, `"message": "s #`), "%s", out)

			out, err = tool(t, "grpcurl", "-plaintext", "-d", `{"service":"ping.v1.PingService"}`, addr, "grpc.health.v1.Health/Check")
			require.NoError(t, err)
			assert.Contains(t, out, `"status": "SERVING"`)

			_, err = tool(t, "grpcurl", "-plaintext", "-d", `{"message":"s","count":0}`, addr, "ping.v1.PingService/StreamPing")
			assert.ErrorContains(t, err, "InvalidArgument")
		})
	}
}

// buf curl speaks all three protocols of the Connect handler, gRPC-Web
// included, with the schema from reflection.
func TestBufCurlEveryProtocol(t *testing.T) {
	srv := startH2C(t, NewHandler(&Service{}))
	for _, p := range []string{"connect", "grpc", "grpcweb"} {
		t.Run(p, func(t *testing.T) {
			args := []string{"buf", "curl", "--protocol", p, "--data", `{"message":"` + p + `"}`}
			if p == "grpc" {
				args = append(args, "--http2-prior-knowledge")
			}
			out, err := tool(t, append(args, srv.URL+pingv1connect.PingServicePingProcedure)...)
			require.NoError(t, err)
			assert.Contains(t, out, `"message": "`+p+`"`)
		})
	}
}

// The article's compile command runs protoc-gen-go and protoc-gen-go-grpc
// only: it writes ping.pb.go and ping_grpc.pb.go, and no pingv1connect
// package, which its Connect server imports. The same two plugins, run here
// by buf on the article's proto, write exactly those two files; this
// chapter's buf.gen.yaml adds protoc-gen-connect-go.
func TestArticleProtocCommandMakesNoConnectCode(t *testing.T) {
	out := t.TempDir()
	template := `{"version":"v2","plugins":[` +
		`{"local":["go","tool","protoc-gen-go"],"out":"` + out + `","opt":"paths=source_relative"},` +
		`{"local":["go","tool","protoc-gen-go-grpc"],"out":"` + out + `","opt":"paths=source_relative"}]}`
	_, err := tool(t, "buf", "generate", "--template", template, "--path", "ping/v1")
	require.NoError(t, err)
	var files []string
	require.NoError(t, filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(out, p)
			files = append(files, rel)
		}
		return err
	}))
	assert.ElementsMatch(t, []string{"ping/v1/ping.pb.go", "ping/v1/ping_grpc.pb.go"}, files, "no ping/v1/pingv1connect")
}
