package payments

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/internal/pgmigrate"
)

// schema is the payments table. UNIQUE (tenant, idempotency_key) is the
// backstop: a second insert for one key cannot happen, whatever the
// middleware's store remembers.
var schema = []string{
	`CREATE SCHEMA IF NOT EXISTS part07`,
	fmt.Sprintf(`CREATE TABLE IF NOT EXISTS part07.payments (
		id              text        PRIMARY KEY,
		tenant          text        NOT NULL,
		idempotency_key text        NOT NULL,
		amount          bigint      NOT NULL CHECK (amount BETWEEN 1 AND %d),
		created_at      timestamptz NOT NULL DEFAULT now(),
		UNIQUE (tenant, idempotency_key)
	)`, int64(MaxAmount)),
	`CREATE INDEX IF NOT EXISTS payments_created_at ON part07.payments (created_at DESC)`,
}

// Migrate creates part07.payments if it is missing; idempotent and safe to
// run from several processes at once.
func Migrate(ctx context.Context, db *pgxpool.Pool) error {
	if err := pgmigrate.Run(ctx, db, schema...); err != nil {
		return fmt.Errorf("payments: migrate: %w", err)
	}
	return nil
}

// DB is what Postgres needs from pgx: *pgxpool.Pool, *pgx.Conn and pgx.Tx
// satisfy it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Postgres is a Repo on part07.payments.
type Postgres struct{ db DB }

var _ Repo = (*Postgres)(nil)

// NewPostgres returns a Repo using db. Run Migrate once before using it.
func NewPostgres(db DB) *Postgres { return &Postgres{db: db} }

// Create implements Repo: INSERT … ON CONFLICT DO NOTHING, then, on a
// conflict, the stored row (a fresh statement sees a row a concurrent insert
// committed while ours waited on it).
func (pg *Postgres) Create(ctx context.Context, p Payment) (Payment, bool, error) {
	for {
		err := pg.db.QueryRow(ctx, `
			INSERT INTO part07.payments (id, tenant, idempotency_key, amount) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant, idempotency_key) DO NOTHING
			RETURNING created_at`, p.ID, p.Tenant, p.Key, p.Amount).Scan(&p.CreatedAt)
		if err == nil {
			p.CreatedAt = p.CreatedAt.UTC()
			return p, true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Payment{}, false, fmt.Errorf("payments: insert: %w", err)
		}
		var old Payment
		err = pg.db.QueryRow(ctx, `SELECT id, tenant, idempotency_key, amount, created_at FROM part07.payments
			WHERE tenant = $1 AND idempotency_key = $2`, p.Tenant, p.Key).
			Scan(&old.ID, &old.Tenant, &old.Key, &old.Amount, &old.CreatedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue // deleted in between: insert again
		case err != nil:
			return Payment{}, false, fmt.Errorf("payments: select: %w", err)
		case old.Amount != p.Amount:
			return Payment{}, false, ErrKeyReused
		}
		old.CreatedAt = old.CreatedAt.UTC()
		return old, false, nil
	}
}

// List implements Repo.
func (pg *Postgres) List(ctx context.Context, tenant string, limit int) ([]Payment, error) {
	rows, err := pg.db.Query(ctx, `SELECT id, tenant, idempotency_key, amount, created_at FROM part07.payments
		WHERE $1 = '' OR tenant = $1 ORDER BY created_at DESC, id LIMIT $2`, tenant, limit)
	if err != nil {
		return nil, fmt.Errorf("payments: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Payment, error) {
		var p Payment
		err := row.Scan(&p.ID, &p.Tenant, &p.Key, &p.Amount, &p.CreatedAt)
		p.CreatedAt = p.CreatedAt.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("payments: list: %w", err)
	}
	return out, nil
}
