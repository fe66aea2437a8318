package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"connection reset mid-query", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"server closed the connection", io.ErrUnexpectedEOF, true},
		{"pool handed out a closed conn", fmt.Errorf("conn: %w", pgconn.ErrConnClosed), true},
		{"deadline ran out", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"still starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection failure class 08", &pgconn.PgError{Code: "08006"}, true},
		{"caller cancelled", fmt.Errorf("query: %w", context.Canceled), false},
		{"wrong password", &pgconn.PgError{Code: "28P01"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"NUL byte in text", &pgconn.PgError{Code: "22021"}, false},
		{"anything else", errors.New("boom"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			assert.ErrorIs(t, got, tt.err, "the cause stays in the chain")
			if tt.unavailable {
				assert.ErrorIs(t, got, domain.ErrUnavailable)
			} else {
				assert.NotErrorIs(t, got, domain.ErrUnavailable)
			}
		})
	}
}

func TestConfigSetsAConnectTimeout(t *testing.T) {
	t.Parallel()
	cfg, err := Config("postgres://u:p@localhost:5432/db")
	require.NoError(t, err)
	assert.Equal(t, DefaultConnectTimeout, cfg.ConnConfig.ConnectTimeout)
	cfg, err = Config("postgres://u:p@localhost:5432/db?connect_timeout=7")
	require.NoError(t, err)
	assert.Equal(t, 7*time.Second, cfg.ConnConfig.ConnectTimeout, "the DSN's own timeout wins")
	_, err = Config("postgres://u:p@localhost:notaport/db")
	assert.Error(t, err)
}

// A stopped server (SIGSTOP, swapped out) still completes TCP handshakes in
// the kernel but never answers the startup message. A listener that never
// accepts behaves the same. Without a connect timeout a look-up with no
// deadline would hang here forever, and one with a deadline until it runs
// out; with Config's timeout it fails as unavailable within seconds.
func TestSilentServerIsUnavailableWithinTheConnectTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	cfg, err := Config(fmt.Sprintf("postgres://u:p@%s/db?sslmode=disable", ln.Addr()))
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	clientDeadline, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err = New(pool).FindByID(clientDeadline, "ada")
	assert.ErrorIs(t, err, domain.ErrUnavailable)
	assert.Less(t, time.Since(start), 5*DefaultConnectTimeout, "generous bound: the connect timeout, not forever")
}
