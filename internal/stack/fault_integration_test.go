//go:build integration

package stack

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redisConn is one raw RESP connection, kept open across faults.
type redisConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRedis(t *testing.T, addr string) *redisConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &redisConn{c: c, r: bufio.NewReader(c)}
}

// ping sends PING and returns the first reply line read before timeout.
func (rc *redisConn) ping(timeout time.Duration) (string, error) {
	if _, err := rc.c.Write([]byte("PING\r\n")); err != nil {
		return "", err
	}
	return rc.read(timeout)
}

func (rc *redisConn) read(timeout time.Duration) (string, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(timeout))
	line, err := rc.r.ReadString('\n')
	return strings.TrimSpace(line), err
}

// pingOnce dials addr, sends PING and returns the reply.
func pingOnce(t *testing.T, addr string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	rc := &redisConn{c: c, r: bufio.NewReader(c)}
	return rc.ping(time.Second)
}

func requireTimeout(t *testing.T, err error, what string) {
	t.Helper()
	var ne net.Error
	require.ErrorAs(t, err, &ne, "%s: want a timeout", what)
	require.True(t, ne.Timeout(), "%s: want a timeout, got %v", what, err)
}

// TestFaultKillRestartAndPause breaks one Redlock master the ways later chapters' fault
// tests will (part06's locks lose a master; a paused holder looks alive but is not) and
// checks each state from a client's side.
func TestFaultKillRestartAndPause(t *testing.T) {
	Require(t, Redlock)
	addr := RedlockAddrs()[1] // redlock-2

	got, err := pingOnce(t, addr)
	require.NoError(t, err, "before")
	require.Equal(t, "+PONG", got, "before")

	Kill(t, "redlock-2")
	_, err = pingOnce(t, addr)
	require.Error(t, err, "after kill: PING %s answered", addr)

	Restart(t, "redlock-2")
	got, err = pingOnce(t, addr)
	require.NoError(t, err, "after restart")
	require.Equal(t, "+PONG", got, "after restart")

	// The kernel still completes the TCP handshake for a stopped process: a new client
	// connects, sends, and hears nothing until its own deadline.
	Pause(t, "redlock-2")
	rc := dialRedis(t, addr)
	_, err = rc.ping(500 * time.Millisecond)
	requireTimeout(t, err, "new connection while paused")

	Resume(t, "redlock-2")
	got, err = rc.read(5 * time.Second)
	require.NoError(t, err, "after resume: the PING sent while paused is answered")
	assert.Equal(t, "+PONG", got)
}

// TestFaultPauseFreezesExistingConnections checks that Pause freezes the whole service,
// not only its main process: a connection opened before the pause (for PostgreSQL, a
// backend process of its own) must stop answering too, or a fault test with a warm pool
// would pass without testing anything.
func TestFaultPauseFreezesExistingConnections(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		Require(t, Redis)
		rc := dialRedis(t, RedisAddr())
		got, err := rc.ping(2 * time.Second)
		require.NoError(t, err)
		require.Equal(t, "+PONG", got)

		Pause(t, "redis")
		_, err = rc.ping(time.Second)
		requireTimeout(t, err, "existing connection while paused")

		Resume(t, "redis")
		got, err = rc.read(5 * time.Second)
		require.NoError(t, err, "after resume: the PING sent while paused is answered")
		assert.Equal(t, "+PONG", got)
	})

	t.Run("postgres", func(t *testing.T) {
		Require(t, Postgres)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, DatabaseURL())
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		var one int
		require.NoError(t, conn.QueryRow(ctx, "select 1").Scan(&one))

		Pause(t, "postgres")
		qctx, qcancel := context.WithTimeout(t.Context(), time.Second)
		defer qcancel()
		err = conn.QueryRow(qctx, "select 1").Scan(&one)
		require.ErrorIs(t, err, context.DeadlineExceeded, "existing connection while paused: its backend answered")

		Resume(t, "postgres")
		ctx2, cancel2 := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel2()
		again, err := pgx.Connect(ctx2, DatabaseURL())
		require.NoError(t, err, "after resume")
		defer again.Close(context.Background())
		require.NoError(t, again.QueryRow(ctx2, "select 1").Scan(&one), "after resume")
	})
}
