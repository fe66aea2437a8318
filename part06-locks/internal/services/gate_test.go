package services

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// A frozen gate holds reads and writes until the thaw, honours deadlines
// meanwhile, and lets a Close through.
func TestGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGate()
		a, b := net.Pipe()
		c := g.Wrap(a)
		defer c.Close()
		defer b.Close()

		go func() { _, _ = b.Write([]byte("x")) }()
		buf := make([]byte, 1)
		_, err := c.Read(buf)
		require.NoError(t, err, "open: traffic flows")

		g.Freeze()
		g.Freeze() // idempotent
		read := make(chan error, 1)
		go func() { _, err := c.Read(buf); read <- err }()
		go func() { _, _ = b.Write([]byte("y")) }()
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case err := <-read:
			require.FailNow(t, "a read went through a frozen gate", "%v", err)
		default:
		}
		g.Thaw()
		g.Thaw() // idempotent
		require.NoError(t, <-read)
		assert.Equal(t, "y", string(buf), "what arrived while frozen is delivered after the thaw")

		g.Freeze()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Second)))
		start := time.Now()
		_, err = c.Read(buf)
		assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "%v", err)
		assert.Equal(t, time.Second, time.Since(start), "the deadline fires while frozen")

		require.NoError(t, c.SetWriteDeadline(time.Time{}))
		written := make(chan error, 1)
		go func() { _, err := c.Write([]byte("z")); written <- err }()
		synctest.Wait()
		require.NoError(t, c.Close())
		assert.ErrorIs(t, <-written, net.ErrClosed, "Close releases a write held by the gate")
		_, err = c.Read(buf)
		assert.True(t, errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe), "%v", err)
	})
}
