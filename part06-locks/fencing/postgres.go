package fencing

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is what Postgres needs from pgx: *pgxpool.Pool, *pgx.Conn and pgx.Tx
// all have it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Postgres is a Store on table part06.fenced, one row per resource.
type Postgres struct{ db DB }

var _ Store = (*Postgres)(nil)

// NewPostgres returns a Store on db. Run Migrate once before using it.
func NewPostgres(db DB) *Postgres { return &Postgres{db: db} }

// migrateLock serializes concurrent Migrate calls: two sessions running
// CREATE SCHEMA IF NOT EXISTS at once can both pass the check and one then
// fails on pg_namespace's unique index.
const migrateLock = 0x7061727430360001 // "part06" + 1

// Migrate creates schema part06 and table part06.fenced if they are missing.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, stmt := range []string{
			`SELECT pg_advisory_xact_lock(` + fmt.Sprint(int64(migrateLock)) + `)`,
			`CREATE SCHEMA IF NOT EXISTS part06`,
			`CREATE TABLE IF NOT EXISTS part06.fenced (
				resource   text PRIMARY KEY,
				value      text NOT NULL,
				token      bigint NOT NULL CHECK (token > 0),
				updated_at timestamptz NOT NULL DEFAULT now()
			)`,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fencing: migrate: %w", err)
	}
	return nil
}

// Write is one statement: the row is inserted, or updated only WHERE the
// stored token is not higher. PostgreSQL locks the row for the check and the
// update together, so two writers cannot both pass the check.
func (p *Postgres) Write(ctx context.Context, resource string, token int64, value string) error {
	if err := validToken(token); err != nil {
		return err
	}
	tag, err := p.db.Exec(ctx, `
		INSERT INTO part06.fenced AS f (resource, value, token) VALUES ($1, $2, $3)
		ON CONFLICT (resource) DO UPDATE SET value = EXCLUDED.value, token = EXCLUDED.token, updated_at = now()
		WHERE f.token <= EXCLUDED.token`, resource, value, token)
	if err != nil {
		return fmt.Errorf("fencing: write %q: %w", resource, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	rec, _, err := p.Read(ctx, resource)
	if err != nil {
		return errors.Join(&StaleError{Resource: resource, Token: token}, err)
	}
	return &StaleError{Resource: resource, Token: token, Latest: rec.Token}
}

// Read implements Store.
func (p *Postgres) Read(ctx context.Context, resource string) (Record, bool, error) {
	var r Record
	err := p.db.QueryRow(ctx, `SELECT value, token FROM part06.fenced WHERE resource = $1`, resource).Scan(&r.Value, &r.Token)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("fencing: read %q: %w", resource, err)
	}
	return r, true, nil
}

// Delete removes resource's row (tests and demos clean up after themselves).
func (p *Postgres) Delete(ctx context.Context, resource string) error {
	_, err := p.db.Exec(ctx, `DELETE FROM part06.fenced WHERE resource = $1`, resource)
	return err
}
