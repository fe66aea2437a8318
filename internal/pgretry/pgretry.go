// Package pgretry repeats a PostgreSQL statement that failed on a broken
// connection, after its pool has dropped every connection it held.
//
// pgxpool pings a connection before handing it out only when it has been idle
// for over a second, so after a server restart quicker than that the pool
// hands out connections the old server's death closed, and the first
// statement on each fails ("unexpected EOF"). Whether a statement may run
// again depends on what it does:
//
//   - Read: a SELECT has no effect; it is always repeated once.
//   - Idempotent: a write whose repetition cannot change what the first run
//     did or what a concurrent writer did since (INSERT … ON CONFLICT DO
//     NOTHING) is repeated once too.
//   - Write: any other write is repeated only when pgconn says the server
//     cannot have received it (pgconn.SafeToRetry); otherwise it may have
//     committed, and a repetition could undo a concurrent write, so its error
//     is returned (the pool's connections are still dropped, so the next
//     call gets a new one).
//
// An error from the statement itself, or the caller's deadline, is returned as
// it is. Chapters use it; none imports another.
package pgretry

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Resetter drops every connection of a pool (pgxpool.Pool.Reset).
type Resetter interface{ Reset() }

// BrokenConn reports whether err says the connection, not the statement,
// failed: the server closed it or is shutting down.
func BrokenConn(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" // admin shutdown, crash shutdown, cannot connect now
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Read runs read, and when it failed on a broken connection, resets pool and
// runs it once more.
func Read(ctx context.Context, pool Resetter, read func() error) error {
	return do(ctx, pool, func(error) bool { return true }, read)
}

// Idempotent is Read for a write that may run twice (see the package doc).
func Idempotent(ctx context.Context, pool Resetter, write func() error) error {
	return do(ctx, pool, func(error) bool { return true }, write)
}

// Write runs write; when it failed on a broken connection it resets pool, and
// runs write once more only if pgconn says the server cannot have received it.
func Write(ctx context.Context, pool Resetter, write func() error) error {
	return do(ctx, pool, pgconn.SafeToRetry, write)
}

func do(ctx context.Context, pool Resetter, again func(error) bool, fn func() error) error {
	err := fn()
	if err == nil || ctx.Err() != nil || !BrokenConn(err) {
		return err
	}
	pool.Reset()
	if !again(err) {
		return err
	}
	return fn()
}
