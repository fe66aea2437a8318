package ping

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
	pingv2 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v2"
)

// The article's bufconn test, in this package's terms: a server with
// MaxConnectionIdle 200 ms, Ping, sleep 300 ms, Ping. The article asserts the
// second Ping fails ("Expected connection to be closed by server keepalive
// timeout, but call succeeded"); it succeeds, because grpc-go dials a new
// connection after the idle GOAWAY. TestKeepaliveIdleRedials asserts what
// does happen: two dials.
func TestArticleKeepaliveTestExpectsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBufnet(t, &GRPCServer{Svc: &Service{}}, ServerOptions(200*time.Millisecond)...)
		_, err := b.client.Ping(t.Context(), &pingv1.PingRequest{Message: "ping"})
		require.NoError(t, err)
		time.Sleep(300 * time.Millisecond)
		_, err = b.client.Ping(t.Context(), &pingv1.PingRequest{Message: "ping"})
		assert.NoError(t, err, "the article's `if err == nil { t.Error(...) }` fires: the call succeeded")
	})
}

// goTest runs `go test args` on a scratch module holding one test file.
func goTest(t *testing.T, src string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module scratch\n\ngo 1.26\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "keepalive_test.go"), []byte(src), 0o644))
	cmd := exec.Command("go", append([]string{"test"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The article's test function is named TestgRPCKeepaliveIdleTimeout: a
// lowercase letter after "Test" is not a test name. Since Go 1.24 `go test`
// runs vet's tests analyzer and refuses the package; with vet off the
// function is silently not run. (Its body also calls log.Printf without
// importing log: the file does not compile either way.)
func TestArticleTestNameNeverRuns(t *testing.T) {
	const named = "package scratch\n\nimport \"testing\"\n\nfunc TestgRPCKeepaliveIdleTimeout(t *testing.T) { t.Fatal(\"ran\") }\n"
	out, err := goTest(t, named)
	assert.Error(t, err, "go test refuses the package")
	assert.Contains(t, out, "TestgRPCKeepaliveIdleTimeout has malformed name: first letter after 'Test' must not be lowercase")

	out, err = goTest(t, named, "-vet=off", "-v")
	assert.NoError(t, err, "with vet off the package passes: %s", out)
	assert.Contains(t, out, "testing: warning: no tests to run", "and the test never ran")

	const logged = "package scratch\n\nimport \"testing\"\n\nfunc TestKeepalive(t *testing.T) { log.Printf(\"serve error: %v\", nil) }\n"
	out, err = goTest(t, logged)
	assert.Error(t, err)
	assert.Contains(t, out, "undefined: log")
}

// articlePingServer is the article's Connect server: a Ping method and
// nothing else, no embedded UnimplementedPingServiceHandler.
type articlePingServer struct{}

func (articlePingServer) Ping(_ context.Context, req *connect.Request[pingv1.PingRequest]) (*connect.Response[pingv1.PingResponse], error) {
	return connect.NewResponse(&pingv1.PingResponse{Message: "Pong: " + req.Msg.GetMessage()}), nil
}

// The article passes its PingServer to pingv1connect.NewPingServiceHandler,
// whose parameter is the generated PingServiceHandler interface: with
// StreamPing in the service (the article's own proto has it) a type with only
// Ping does not satisfy it, and the snippet does not compile. ConnectServer
// embeds UnimplementedPingServiceHandler.
func TestArticleConnectServerLacksStreamPing(t *testing.T) {
	var article any = articlePingServer{}
	_, ok := article.(pingv1connect.PingServiceHandler)
	assert.False(t, ok, "the article's server is not a PingServiceHandler")
	var ours any = &ConnectServer{}
	_, ok = ours.(pingv1connect.PingServiceHandler)
	assert.True(t, ok)
}

// "Protobuf utilizes pre-generated serializer files to write binary stream
// layouts directly": protoc-gen-go generates types and descriptors, not
// serializers. proto.Marshal runs the runtime's table-driven coder, built
// from the descriptor by reflection on first use (vtprotobuf is the plugin
// that generates marshal code).
func TestArticleGeneratedCodeHasNoSerializer(t *testing.T) {
	typ := reflect.TypeOf(&pingv1.PingRequest{})
	for _, m := range []string{"Marshal", "Unmarshal", "MarshalVT", "Size"} {
		_, ok := typ.MethodByName(m)
		assert.False(t, ok, "generated PingRequest has no %s method", m)
	}
	_, ok := typ.MethodByName("ProtoReflect")
	assert.True(t, ok, "it has ProtoReflect, which the runtime's coder walks")
}

// The article's v2 reserves field 2 of PingRequest "Field 2 was removed";
// its v1 PingRequest has only field 1 (field 2, timestamp_ms, is
// PingResponse's).
func TestArticleV2ReservesAFieldV1NeverHad(t *testing.T) {
	req := (&pingv1.PingRequest{}).ProtoReflect().Descriptor()
	assert.Nil(t, req.Fields().ByNumber(2), "v1 PingRequest has no field 2")
	assert.Equal(t, 1, req.Fields().Len())
	resp := (&pingv1.PingResponse{}).ProtoReflect().Descriptor()
	assert.Equal(t, "timestamp_ms", string(resp.Fields().ByNumber(2).Name()))
	v2 := (&pingv2.PingRequest{}).ProtoReflect().Descriptor()
	assert.True(t, v2.ReservedRanges().Has(2))
	assert.True(t, v2.ReservedNames().Has("deprecated_field_name"))
}

// The FAQ: ConnectRPC "supports standard gRPC, base64-encoded gRPC-Web, and
// a simple POST JSON Connect protocol". connect-go serves binary gRPC-Web
// (application/grpc-web+proto, what grpc-web's JavaScript client sends by
// default); the base64 form, application/grpc-web-text, is refused with 415.
func TestArticleGRPCWebTextIsNotServed(t *testing.T) {
	h := NewHandler(&Service{})
	frame := []byte{0, 0, 0, 0, 4, 0x0a, 0x02, 'h', 'i'} // uncompressed, 4 bytes: message "hi"
	for ct, want := range map[string]int{
		"application/grpc-web+proto": http.StatusOK,
		"application/grpc-web-text":  http.StatusUnsupportedMediaType,
	} {
		body := frame
		if ct == "application/grpc-web-text" {
			body = []byte(base64.StdEncoding.EncodeToString(frame))
		}
		req := httptest.NewRequest(http.MethodPost, pingv1connect.PingServicePingProcedure, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, want, rec.Code, ct)
	}
}

// The article dials with grpc.DialContext(ctx, "bufnet", ...), deprecated
// since grpc-go 1.63 in favour of grpc.NewClient. The two differ in the
// default scheme: DialContext's is passthrough, NewClient's is dns, so
// NewClient("bufnet") looks "bufnet" up as a host name and the call fails
// before the custom dialer is ever used; "passthrough:///bufnet" works.
func TestArticleDialTargetNeedsPassthrough(t *testing.T) {
	lis, _ := bufListener(t)
	s := grpc.NewServer()
	pingv1.RegisterPingServiceServer(s, &GRPCServer{Svc: &Service{}})
	serve(t, s, lis)
	var dials atomic.Int32
	dialer := grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		dials.Add(1)
		return lis.DialContext(ctx)
	})
	for target, ok := range map[string]bool{"bufnet": false, "passthrough:///bufnet": true} {
		conn, err := grpc.NewClient(target, dialer, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		_, err = pingv1.NewPingServiceClient(conn).Ping(ctx, &pingv1.PingRequest{Message: "ping"}, grpc.WaitForReady(false))
		cancel()
		require.NoError(t, conn.Close())
		if ok {
			assert.NoError(t, err, target)
		} else {
			assert.Equal(t, codes.Unavailable, status.Code(err), "%s: %v", target, err)
		}
	}
	assert.EqualValues(t, 1, dials.Load(), "only the passthrough target reached the dialer")
}
