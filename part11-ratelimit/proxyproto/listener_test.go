package proxyproto_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/proxyproto"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// server runs an HTTP server behind a proxyproto.Listener that trusts peers
// when trust is true; the handler echoes r.RemoteAddr. It returns the address
// and the errors the listener reported.
func server(t *testing.T, trust bool, tlsOn bool) (addr string, refused func() []error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var errs []error
	pl := &proxyproto.Listener{
		Listener:      ln,
		Trusted:       func(netip.Addr) bool { return trust },
		HeaderTimeout: 300 * time.Millisecond,
		OnError:       func(_ net.Addr, err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.RemoteAddr)
	}))
	srv.Listener = pl
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return ln.Addr().String(), func() []error { mu.Lock(); defer mu.Unlock(); return append([]error(nil), errs...) }
}

// refusedBody is what net/http answers when the connection's first Read
// fails: it closes the connection after a bare 400, and the handler never runs.
const refusedBody = "400 Bad Request"

// get dials addr, writes prefix, then a GET, and returns the response body
// or the error (a refused connection is closed without an answer).
func get(t *testing.T, addr, prefix string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	if _, err := io.WriteString(c, prefix+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTrustedPeerHeaderSetsRemoteAddr(t *testing.T) {
	addr, refused := server(t, true, false)
	v1 := proxyproto.Header{Source: src4, Destination: dst4}.AppendV1(nil)
	v2 := proxyproto.Header{Source: src6, Destination: dst6}.AppendV2(nil)
	got, err := get(t, addr, string(v1))
	require.NoError(t, err)
	assert.Equal(t, "198.51.100.9:56324", got)
	got, err = get(t, addr, string(v2))
	require.NoError(t, err)
	assert.Equal(t, "[2001:db8::9]:56324", got)
	got, err = get(t, addr, string(proxyproto.Header{Local: true}.AppendV2(nil)))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(got, "127.0.0.1:"), "LOCAL: the socket's own peer, got %s", got)
	assert.Empty(t, refused())

	got, err = get(t, addr, "")
	require.NoError(t, err)
	assert.Equal(t, refusedBody, got, "a trusted peer without a header is refused")
	got, err = get(t, addr, "PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n")
	require.NoError(t, err)
	assert.Equal(t, refusedBody, got, "a malformed header is refused")
	require.Eventually(t, func() bool { return len(refused()) == 2 }, 5*time.Second, 10*time.Millisecond)
	assert.ErrorIs(t, refused()[0], proxyproto.ErrMissing)
	assert.ErrorIs(t, refused()[1], proxyproto.ErrInvalid)
}

// The must-show: a PROXY header from an untrusted peer is refused,
// while that peer's plain requests are served with its real address.
func TestUntrustedPeerHeaderIsRefused(t *testing.T) {
	addr, refused := server(t, false, false)
	for _, h := range [][]byte{
		proxyproto.Header{Source: src4, Destination: dst4}.AppendV1(nil),
		proxyproto.Header{Source: src4, Destination: dst4}.AppendV2(nil),
	} {
		got, err := get(t, addr, string(h))
		require.NoError(t, err)
		assert.Equal(t, refusedBody, got)
	}
	got, err := get(t, addr, "")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(got, "127.0.0.1:"), got)
	require.Eventually(t, func() bool { return len(refused()) == 2 }, 5*time.Second, 10*time.Millisecond)
	for _, err := range refused() {
		assert.ErrorIs(t, err, proxyproto.ErrUntrusted)
	}
}

// A silent trusted peer is cut off after HeaderTimeout and never blocks
// the accept loop: another client is served meanwhile.
func TestSilentPeerDoesNotBlockAccept(t *testing.T) {
	addr, refused := server(t, true, false)
	silent, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer silent.Close()
	got, err := get(t, addr, string(proxyproto.Header{Source: src4, Destination: dst4}.AppendV1(nil)))
	require.NoError(t, err)
	assert.Equal(t, "198.51.100.9:56324", got)
	require.Eventually(t, func() bool { return len(refused()) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.ErrorContains(t, refused()[0], "timeout")
}

// The header comes before the TLS handshake, as the article says.
func TestHeaderBeforeTLS(t *testing.T) {
	addr, _ := server(t, true, true)
	raw, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Write(proxyproto.Header{Source: src4, Destination: dst4}.AppendV2(nil))
	require.NoError(t, err)
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) // httptest's self-signed certificate
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "198.51.100.9:56324", string(b))
}
