// Package postgres is the PostgreSQL adapter for port.UserRepository, built on
// pgx v5. Its table lives in schema part01 so this chapter never collides with
// another chapter sharing the same database.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
)

var _ port.UserRepository = (*Repository)(nil)

// DB is what the repository needs from pgx. *pgxpool.Pool, *pgx.Conn and
// pgx.Tx all satisfy it, so callers can run the repository inside their own
// transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schema creates the chapter's objects. The CHECK constraints repeat the
// domain's rules so rows written around the adapter (psql, a migration, a bug)
// still cannot break the invariants the domain relies on when reading. The
// last statement adds the email length cap to a table created before it
// existed; NOT VALID enforces it on new writes without rejecting old rows.
var schema = []string{
	`CREATE SCHEMA IF NOT EXISTS part01`,
	fmt.Sprintf(`CREATE TABLE IF NOT EXISTS part01.users (
		id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,%d}$'),
		name       text NOT NULL CHECK (btrim(name) <> '' AND char_length(name) <= %d),
		email      text NOT NULL CHECK (email LIKE '_%%@_%%'),
		created_at timestamptz NOT NULL DEFAULT now(),
		updated_at timestamptz NOT NULL DEFAULT now(),
		CONSTRAINT users_email_length CHECK (octet_length(email) <= %d)
	)`, domain.MaxIDLen, domain.MaxNameLen, domain.MaxEmailLen),
	fmt.Sprintf(`DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_constraint
			WHERE conrelid = 'part01.users'::regclass AND conname = 'users_email_length') THEN
			ALTER TABLE part01.users ADD CONSTRAINT users_email_length
				CHECK (octet_length(email) <= %d) NOT VALID;
		END IF;
	END $$`, domain.MaxEmailLen),
}

// migrateLock is the advisory lock key Migrate holds. Two sessions running
// CREATE SCHEMA IF NOT EXISTS at the same moment can both pass the "not
// exists" check and one then fails on pg_namespace's unique index; the lock
// serializes them (parallel test packages do run Migrate concurrently).
const migrateLock = 0x7061727430310001 // "part01" + 1

// Migrate creates schema part01 and its users table if they are missing. It
// is idempotent and safe to call from several processes at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
			return err
		}
		for _, stmt := range schema {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// DefaultConnectTimeout bounds how long opening one connection may take when
// the DSN sets no connect_timeout. pgx's default is none: a connection to a
// stopped (SIGSTOPped, swapped out, black-holed) server then waits for the
// caller's deadline, or forever, while the kernel has long accepted the TCP
// handshake.
const DefaultConnectTimeout = 2 * time.Second

// Config parses dsn (a postgres:// URL or key=value string) into a pool
// configuration with DefaultConnectTimeout unless the DSN sets its own
// connect_timeout.
func Config(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	return cfg, nil
}

// Repository stores users in part01.users.
type Repository struct {
	db DB
}

// New returns a Repository using db. Run Migrate once before using it.
func New(db DB) *Repository {
	return &Repository{db: db}
}

// FindByID selects the user with the given ID.
func (r *Repository) FindByID(ctx context.Context, id string) (*domain.User, error) {
	if err := domain.ValidateID(id); err != nil {
		return nil, err
	}
	var u domain.User
	err := r.db.QueryRow(ctx, `SELECT id, name, email FROM part01.users WHERE id = $1`, id).
		Scan(&u.ID, &u.Name, &u.Email)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: id %q: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find user %q: %w", id, classify(err))
	}
	return &u, nil
}

// Save inserts the user or, if the ID exists, replaces its name and email in
// the same statement (INSERT … ON CONFLICT DO UPDATE), so concurrent saves of
// one ID never fail with a duplicate key and the last to commit wins.
func (r *Repository) Save(ctx context.Context, u *domain.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	_, err := r.db.Exec(ctx, `
		INSERT INTO part01.users (id, name, email) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE
		SET name = EXCLUDED.name, email = EXCLUDED.email, updated_at = now()`,
		u.ID, u.Name, u.Email)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23514" { // check_violation
		// Unreachable while Validate and the CHECKs agree; if they drift, the
		// caller still gets a 400-class error rather than a 500.
		return &domain.ValidationError{Field: pgErr.ConstraintName, Reason: "violates a database constraint"}
	}
	if err != nil {
		return fmt.Errorf("postgres: save user %q: %w", u.ID, classify(err))
	}
	return nil
}

// classify marks the errors that mean "the database cannot answer now" with
// domain.ErrUnavailable, keeping the original in the chain: a refused or
// timed-out connection, one cut mid-query, a deadline that ran out, and the
// SQLSTATEs of a server that is shutting down, starting up or out of
// connections. A wrong password or a bad query stays a plain error (a bug
// or a misconfiguration, not an outage), and so does a cancellation: the
// caller went away. A Save cut mid-query may or may not have committed; a
// retry is safe because Save is an upsert.
func classify(err error) error {
	if unavailable(err) {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	return err
}

func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300": // admin/crash shutdown, cannot_connect_now, too_many_connections
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var (
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
