package pgretry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/sysdesign-masterclass/golang/internal/pgretry"
)

type pool struct{ resets int }

func (p *pool) Reset() { p.resets++ }

// safeErr is an error pgconn.SafeToRetry accepts: the statement never left.
type safeErr struct{ error }

func (safeErr) SafeToRetry() bool { return true }

func (e safeErr) Unwrap() error { return e.error }

// script returns a func that fails with errs in turn, then succeeds, and
// counts its calls.
func script(calls *int, errs ...error) func() error {
	return func() error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func TestBrokenConn(t *testing.T) {
	for _, err := range []error{
		io.ErrUnexpectedEOF, io.EOF, pgconn.ErrConnClosed, net.ErrClosed, syscall.ECONNRESET, syscall.EPIPE,
		fmt.Errorf("read: %w", io.ErrUnexpectedEOF),
		&pgconn.PgError{Code: "57P01"}, &pgconn.PgError{Code: "57P02"}, &pgconn.PgError{Code: "57P03"},
	} {
		assert.True(t, pgretry.BrokenConn(err), "%v", err)
	}
	for _, err := range []error{
		errors.New("boom"), context.DeadlineExceeded, &pgconn.PgError{Code: "23505"}, &pgconn.PgError{Code: "40001"},
	} {
		assert.False(t, pgretry.BrokenConn(err), "%v", err)
	}
}

func TestReadRepeatsOnceAfterABrokenConnection(t *testing.T) {
	ctx := context.Background()
	var p pool
	var calls int
	assert.NoError(t, pgretry.Read(ctx, &p, script(&calls, io.ErrUnexpectedEOF)))
	assert.Equal(t, 2, calls)
	assert.Equal(t, 1, p.resets)

	p, calls = pool{}, 0
	assert.ErrorIs(t, pgretry.Read(ctx, &p, script(&calls, io.ErrUnexpectedEOF, io.ErrUnexpectedEOF)), io.ErrUnexpectedEOF, "once, not forever")
	assert.Equal(t, 2, calls)

	p, calls = pool{}, 0
	syntax := &pgconn.PgError{Code: "42601"}
	assert.ErrorIs(t, pgretry.Read(ctx, &p, script(&calls, syntax)), syntax, "the statement's own error is not repeated")
	assert.Equal(t, 1, calls)
	assert.Zero(t, p.resets)

	p, calls = pool{}, 0
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, pgretry.Read(cctx, &p, script(&calls, io.ErrUnexpectedEOF)), io.ErrUnexpectedEOF, "not after the caller's deadline")
	assert.Equal(t, 1, calls)
}

func TestWriteRepeatsOnlyWhatTheServerCannotHaveReceived(t *testing.T) {
	ctx := context.Background()
	var p pool
	var calls int
	sent := fmt.Errorf("write: %w", io.ErrUnexpectedEOF) // the statement may have committed
	assert.ErrorIs(t, pgretry.Write(ctx, &p, script(&calls, sent)), io.ErrUnexpectedEOF)
	assert.Equal(t, 1, calls, "not repeated: it may have committed")
	assert.Equal(t, 1, p.resets, "but the dead connections are dropped for the next call")

	p, calls = pool{}, 0
	assert.NoError(t, pgretry.Write(ctx, &p, script(&calls, safeErr{syscall.EPIPE})))
	assert.Equal(t, 2, calls, "never sent: repeated")
	assert.Equal(t, 1, p.resets)
}

func TestIdempotentRepeatsAfterAnyBrokenConnection(t *testing.T) {
	var p pool
	var calls int
	assert.NoError(t, pgretry.Idempotent(context.Background(), &p, script(&calls, io.ErrUnexpectedEOF)))
	assert.Equal(t, 2, calls)
	assert.Equal(t, 1, p.resets)
}
