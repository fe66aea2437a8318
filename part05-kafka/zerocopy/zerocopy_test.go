package zerocopy

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// file writes size random bytes to a temporary file.
func file(tb testing.TB, size int) (string, [32]byte) {
	tb.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	p := filepath.Join(tb.TempDir(), "segment.log")
	require.NoError(tb, os.WriteFile(p, b, 0o600))
	return p, sha256.Sum256(b)
}

// serve starts Serve on loopback and returns its address; the server stops
// when the test ends.
func serve(tb testing.TB, path string, m Mode) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	done := make(chan error, 1)
	go func() { done <- Serve(ln, path, m) }()
	tb.Cleanup(func() {
		_ = ln.Close()
		assert.NoError(tb, <-done)
	})
	return ln.Addr().String()
}

func fetch(tb testing.TB, addr string, w io.Writer) int64 {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(tb, err)
	defer c.Close()
	n, err := io.Copy(w, c)
	require.NoError(tb, err)
	return n
}

// Both ways deliver the file byte for byte.
func TestBothModesSendTheWholeFile(t *testing.T) {
	path, sum := file(t, 3<<20+17)
	for _, m := range []Mode{Sendfile, ReadWrite} {
		h := sha256.New()
		assert.Equal(t, int64(3<<20+17), fetch(t, serve(t, path, m), h), m.String())
		assert.Equal(t, sum[:], h.Sum(nil), m.String())
	}
	_, err := Send(nil, filepath.Join(t.TempDir(), "missing"), Sendfile)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
