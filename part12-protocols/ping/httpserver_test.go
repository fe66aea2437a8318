package ping

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/test/bufconn"
)

// A keep-alive connection left idle is closed by NewHTTPServer's server
// within IdleTimeout: without one (the article's http.ListenAndServe has
// none, and NewHTTPServer set none either) a client that sends one request
// and goes quiet holds a connection and its goroutine for ever. On a fake
// clock in a synctest bubble, over bufconn.
func TestIdleConnectionsAreClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lis := bufconn.Listen(1 << 16)
		srv := NewHTTPServer(NewRESTHandler(&Service{}))
		served := make(chan error, 1)
		go func() { served <- srv.Serve(lis) }()
		defer func() {
			require.NoError(t, srv.Close())
			assert.ErrorIs(t, <-served, http.ErrServerClosed)
		}()
		c, err := lis.Dial()
		require.NoError(t, err)
		defer c.Close()
		body := `{"message":"hi"}`
		_, err = io.WriteString(c, "POST "+RESTPath+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"+body)
		require.NoError(t, err)
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.False(t, resp.Close, "a keep-alive connection")

		start := time.Now()
		require.NoError(t, c.SetReadDeadline(start.Add(time.Hour)))
		_, err = r.ReadByte()
		assert.ErrorIs(t, err, io.EOF, "the server closed the idle connection")
		assert.Equal(t, HTTPIdleTimeout, time.Since(start), "after HTTPIdleTimeout")
	})
}
