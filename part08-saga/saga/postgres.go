package saga

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresStore is the Store on PostgreSQL (schema part08). Every method is
// one statement: the change and its journal entry commit together, and the
// upserts make a step, its compensation and their retries safe in any order.
type PostgresStore struct {
	pool *pgxpool.Pool
}

// NewPostgresStore returns a Store on pool; call Migrate once first.
func NewPostgresStore(pool *pgxpool.Pool) *PostgresStore { return &PostgresStore{pool: pool} }

// schema is the saga's tables. A tombstone (a compensation that found nothing
// to undo) is a row in its undone status, so a late step finds it and does
// nothing.
const schema = `
CREATE SCHEMA IF NOT EXISTS part08;
CREATE TABLE IF NOT EXISTS part08.orders (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	amount     bigint NOT NULL,
	currency   text NOT NULL,
	status     text NOT NULL CHECK (status IN ('pending', 'confirmed', 'cancelled'))
);
CREATE TABLE IF NOT EXISTS part08.reservations (
	order_id text PRIMARY KEY,
	items    jsonb NOT NULL,
	status   text NOT NULL CHECK (status IN ('reserved', 'released'))
);
CREATE TABLE IF NOT EXISTS part08.payments (
	order_id text PRIMARY KEY,
	amount   bigint NOT NULL,
	currency text NOT NULL,
	status   text NOT NULL CHECK (status IN ('charged', 'refunded'))
);
CREATE TABLE IF NOT EXISTS part08.journal (
	seq      bigserial PRIMARY KEY,
	order_id text NOT NULL,
	step     text NOT NULL,
	undo     boolean NOT NULL,
	note     text NOT NULL,
	at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS journal_order_seq ON part08.journal (order_id, seq);
`

// Migrate creates the saga's tables, under an advisory lock so that
// concurrent callers (parallel test packages, a worker and a demo) do not race
// on CREATE ... IF NOT EXISTS.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(8008)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
}

// journaled runs an INSERT or UPDATE that returns the changed order id as
// "changed" (a tombstone returns nothing), and journals the change in the same
// statement.
func (s *PostgresStore) journaled(ctx context.Context, change, step string, undo bool, note string, args ...any) error {
	n := len(args)
	q := fmt.Sprintf(`WITH c AS (%s) INSERT INTO part08.journal (order_id, step, undo, note) SELECT changed, $%d, $%d, $%d FROM c WHERE changed IS NOT NULL`,
		change, n+1, n+2, n+3)
	_, err := s.pool.Exec(ctx, q, append(args, step, undo, note)...)
	return err
}

// CreateOrder implements Store.
func (s *PostgresStore) CreateOrder(ctx context.Context, in OrderSagaInput) error {
	return s.journaled(ctx, `INSERT INTO part08.orders (id, user_id, amount, currency, status) VALUES ($1, $2, $3, $4, 'pending')
		ON CONFLICT (id) DO NOTHING RETURNING id AS changed`,
		StepCreateOrder, false, "order created (pending)", in.OrderID, in.UserID, in.Amount, in.Currency)
}

// CancelOrder implements Store: an upsert, so a cancel that races a late
// create either cancels it or leaves the tombstone that create then skips.
func (s *PostgresStore) CancelOrder(ctx context.Context, id string) error {
	return s.journaled(ctx, `INSERT INTO part08.orders AS o (id, user_id, amount, currency, status) VALUES ($1, '', 0, '', 'cancelled')
		ON CONFLICT (id) DO UPDATE SET status = 'cancelled' WHERE o.status <> 'cancelled'
		RETURNING CASE WHEN xmax <> 0 THEN id END AS changed`,
		StepCreateOrder, true, "order cancelled", id)
}

// Reserve implements Store.
func (s *PostgresStore) Reserve(ctx context.Context, id string, items []OrderItem) (string, error) {
	b, err := json.Marshal(items)
	if err != nil {
		return "", err
	}
	return ReservationID(id), s.journaled(ctx, `INSERT INTO part08.reservations (order_id, items, status) VALUES ($1, $2, 'reserved')
		ON CONFLICT (order_id) DO NOTHING RETURNING order_id AS changed`,
		StepReserveInventory, false, "inventory reserved", id, b)
}

// Release implements Store.
func (s *PostgresStore) Release(ctx context.Context, id string) error {
	return s.journaled(ctx, `INSERT INTO part08.reservations AS r (order_id, items, status) VALUES ($1, '[]', 'released')
		ON CONFLICT (order_id) DO UPDATE SET status = 'released' WHERE r.status = 'reserved'
		RETURNING CASE WHEN xmax <> 0 THEN order_id END AS changed`,
		StepReserveInventory, true, "inventory released", id)
}

// Charge implements Store.
func (s *PostgresStore) Charge(ctx context.Context, id string, amount int64, currency string) (string, error) {
	return TransactionID(id), s.journaled(ctx, `INSERT INTO part08.payments (order_id, amount, currency, status) VALUES ($1, $2, $3, 'charged')
		ON CONFLICT (order_id) DO NOTHING RETURNING order_id AS changed`,
		StepProcessPayment, false, "payment charged", id, amount, currency)
}

// Refund implements Store.
func (s *PostgresStore) Refund(ctx context.Context, id string) error {
	return s.journaled(ctx, `INSERT INTO part08.payments AS p (order_id, amount, currency, status) VALUES ($1, 0, '', 'refunded')
		ON CONFLICT (order_id) DO UPDATE SET status = 'refunded' WHERE p.status = 'charged'
		RETURNING CASE WHEN xmax <> 0 THEN order_id END AS changed`,
		StepProcessPayment, true, "payment refunded", id)
}

// Confirm implements Store.
func (s *PostgresStore) Confirm(ctx context.Context, id string) error {
	return s.journaled(ctx, `UPDATE part08.orders SET status = 'confirmed' WHERE id = $1 AND status = 'pending' RETURNING id AS changed`,
		StepNotifyFulfillment, false, "fulfillment notified, order confirmed", id)
}

// Journal implements Store.
func (s *PostgresStore) Journal(ctx context.Context, id string) ([]Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT step, undo, note, at FROM part08.journal WHERE order_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.Step, &e.Undo, &e.Note, &e.At)
		return e, err
	})
}

// Audit is what the database says about a set of sagas: how each ended, and
// the two failures a saga exists to prevent.
type Audit struct {
	Orders, Confirmed, Cancelled, Pending int
	// Charges counts "payment charged" journal entries; DoubleCharges the
	// orders with more than one.
	Charges, DoubleCharges int
	// OrphanReservations are reservations still held for an order that is not
	// confirmed; ChargedNotConfirmed payments still taken for one.
	OrphanReservations, ChargedNotConfirmed int
}

// Audit counts the sagas whose order id starts with prefix. Run it when they
// have all ended: a running saga's reservation is not an orphan yet.
func (s *PostgresStore) Audit(ctx context.Context, prefix string) (Audit, error) {
	var a Audit
	like := prefix + "%"
	err := s.pool.QueryRow(ctx, `
		SELECT
			count(*) FILTER (WHERE user_id <> ''),
			count(*) FILTER (WHERE status = 'confirmed'),
			count(*) FILTER (WHERE status = 'cancelled' AND user_id <> ''),
			count(*) FILTER (WHERE status = 'pending'),
			(SELECT count(*) FROM part08.journal WHERE order_id LIKE $1 AND step = 'process-payment' AND NOT undo),
			(SELECT count(*) FROM (SELECT order_id FROM part08.journal WHERE order_id LIKE $1 AND step = 'process-payment' AND NOT undo
				GROUP BY order_id HAVING count(*) > 1) d),
			(SELECT count(*) FROM part08.reservations r LEFT JOIN part08.orders o ON o.id = r.order_id
				WHERE r.order_id LIKE $1 AND r.status = 'reserved' AND o.status IS DISTINCT FROM 'confirmed'),
			(SELECT count(*) FROM part08.payments p LEFT JOIN part08.orders o ON o.id = p.order_id
				WHERE p.order_id LIKE $1 AND p.status = 'charged' AND o.status IS DISTINCT FROM 'confirmed')
		FROM part08.orders WHERE id LIKE $1`, like).Scan(
		&a.Orders, &a.Confirmed, &a.Cancelled, &a.Pending, &a.Charges, &a.DoubleCharges, &a.OrphanReservations, &a.ChargedNotConfirmed)
	return a, err
}
