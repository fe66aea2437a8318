package patterns

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrate creates schema part03 and its products table. It is idempotent and safe to
// run from several processes at once (an advisory lock serialises the DDL, which
// PostgreSQL's IF NOT EXISTS alone does not). Constraints missing from a table made
// by an older version are added NOT VALID: new rows are checked, old ones are left.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('part03.migrate'))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(`
			CREATE SCHEMA IF NOT EXISTS part03;
			CREATE TABLE IF NOT EXISTS part03.products (
				id          text PRIMARY KEY,
				name        text NOT NULL,
				price_cents bigint NOT NULL,
				version     bigint NOT NULL DEFAULT 1,
				updated_at  timestamptz NOT NULL DEFAULT now()
			);
			DO $$
			DECLARE c text[];
			BEGIN
				FOREACH c SLICE 1 IN ARRAY ARRAY[
					['products_id_len',      'octet_length(id) BETWEEN 1 AND %d'],
					['products_name_len',    'octet_length(name) <= %d'],
					['products_price_check', 'price_cents >= 0']]
				LOOP
					IF NOT EXISTS (SELECT 1 FROM pg_constraint
					               WHERE conrelid = 'part03.products'::regclass AND conname = c[1]) THEN
						EXECUTE format('ALTER TABLE part03.products ADD CONSTRAINT %%I CHECK (%%s) NOT VALID', c[1], c[2]);
					END IF;
				END LOOP;
			END $$`, MaxIDLen, MaxNameLen))
		return err
	})
}

// PGStore is the PostgreSQL Store (table part03.products; run Migrate first).
type PGStore struct {
	Pool *pgxpool.Pool
}

// rejected wraps errors caused by what a row holds with ErrRejected: SQLSTATE
// class 22 (data exception: a NUL byte, invalid UTF-8, a value out of range), class
// 23 (integrity constraint violation) and 54000 (an index entry too large).
func rejected(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if c := pgErr.Code; c[:2] == "22" || c[:2] == "23" || c == "54000" {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	return err
}

// Get implements Store.
func (s PGStore) Get(ctx context.Context, id string) (Product, error) {
	var p Product
	err := s.Pool.QueryRow(ctx,
		`SELECT id, name, price_cents, version FROM part03.products WHERE id = $1`, id,
	).Scan(&p.ID, &p.Name, &p.PriceCents, &p.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return Product{}, ErrNotFound
	}
	return p, err
}

const upsert = `
	ON CONFLICT (id) DO UPDATE SET
		name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
		version = part03.products.version + 1, updated_at = now()`

// Put implements Store.
func (s PGStore) Put(ctx context.Context, p Product) (Product, error) {
	err := s.Pool.QueryRow(ctx,
		`INSERT INTO part03.products (id, name, price_cents) VALUES ($1, $2, $3)`+upsert+` RETURNING version`,
		p.ID, p.Name, p.PriceCents,
	).Scan(&p.Version)
	return p, rejected(err)
}

// PutBatch implements Store: one statement, so a batch commits whole or not at all.
// Rows are written in the order given; callers sort them by ID, so that two
// processes upserting overlapping batches take row locks in one order and cannot
// deadlock.
func (s PGStore) PutBatch(ctx context.Context, ps []Product) error {
	if len(ps) == 0 {
		return nil
	}
	ids := make([]string, len(ps))
	names := make([]string, len(ps))
	prices := make([]int64, len(ps))
	for i, p := range ps {
		ids[i], names[i], prices[i] = p.ID, p.Name, p.PriceCents
	}
	_, err := s.Pool.Exec(ctx,
		`INSERT INTO part03.products (id, name, price_cents)
		 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])`+upsert,
		ids, names, prices)
	return rejected(err)
}

// Count returns how many products have IDs starting with prefix.
func (s PGStore) Count(ctx context.Context, prefix string) (int, error) {
	var n int
	err := s.Pool.QueryRow(ctx,
		`SELECT count(*) FROM part03.products WHERE starts_with(id, $1)`, prefix).Scan(&n)
	return n, err
}

// DeletePrefix removes the products whose IDs start with prefix (test and demo cleanup).
func (s PGStore) DeletePrefix(ctx context.Context, prefix string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM part03.products WHERE starts_with(id, $1)`, prefix)
	return err
}
