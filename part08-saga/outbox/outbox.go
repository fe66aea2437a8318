package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Event is one outbox row.
type Event struct {
	Seq           int64 // insertion order
	ID            string
	AggregateType string
	AggregateID   string
	EventType     string
	Payload       json.RawMessage
	CreatedAt     time.Time

	invalid error // why a relay could not read the row; Route dead-letters it
}

// DefaultTable is the outbox table (the article's outbox_table).
const DefaultTable = "outbox"

// schema is the article's outbox table (part08.outbox by default) plus seq,
// the order rows were written in, and published_at for a relay that marks
// instead of deleting; and the article's orders table for CreateOrder.
const schema = `
CREATE SCHEMA IF NOT EXISTS part08;
CREATE TABLE IF NOT EXISTS part08.{{table}} (
	id             uuid         NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	seq            bigserial    NOT NULL UNIQUE,
	aggregate_type varchar(100) NOT NULL,
	aggregate_id   varchar(255) NOT NULL,
	event_type     varchar(100) NOT NULL,
	payload        jsonb        NOT NULL,
	created_at     timestamptz  NOT NULL DEFAULT now(),
	published_at   timestamptz
);
CREATE INDEX IF NOT EXISTS {{table}}_unpublished ON part08.{{table}} (seq) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS part08.outbox_orders (
	id      uuid   NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	user_id text   NOT NULL,
	amount  bigint NOT NULL,
	status  text   NOT NULL
);
`

// Migrate creates the outbox table part08.<table> (DefaultTable for the
// application's; tests use their own) and the orders table, under the saga's
// advisory lock: both create schema part08.
func Migrate(ctx context.Context, pool *pgxpool.Pool, table string) error {
	if err := checkTable(table); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(8008)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, strings.ReplaceAll(schema, "{{table}}", table))
		return err
	})
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// checkTable refuses a table name that is not a plain identifier: it is
// spliced into SQL.
func checkTable(table string) error {
	if !tableName.MatchString(table) {
		return fmt.Errorf("outbox table name %q: want [a-z_][a-z0-9_]*, at most 41 characters", table)
	}
	return nil
}

// Insert writes ev into the outbox part08.<table> inside tx, the caller's
// transaction, and returns its id: the event exists if and only if tx commits.
func Insert(ctx context.Context, tx pgx.Tx, table string, ev Event) (string, error) {
	if err := checkTable(table); err != nil {
		return "", err
	}
	var id string
	err := tx.QueryRow(ctx, `INSERT INTO part08.`+table+` (aggregate_type, aggregate_id, event_type, payload)
		VALUES ($1, $2, $3, $4) RETURNING id`, ev.AggregateType, ev.AggregateID, ev.EventType, []byte(ev.Payload)).Scan(&id)
	return id, err
}

// CreateOrder is the article's example: the order row and its ORDER_CREATED
// event in one transaction. It returns the order id only once the
// transaction committed.
func CreateOrder(ctx context.Context, pool *pgxpool.Pool, userID string, amount int64) (string, error) {
	var orderID string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO part08.outbox_orders (user_id, amount, status) VALUES ($1, $2, 'pending') RETURNING id`,
			userID, amount).Scan(&orderID); err != nil {
			return err
		}
		payload, err := json.Marshal(map[string]any{"order_id": orderID, "user_id": userID, "amount": amount})
		if err != nil {
			return err
		}
		_, err = Insert(ctx, tx, DefaultTable, Event{AggregateType: "order", AggregateID: orderID, EventType: "ORDER_CREATED", Payload: payload})
		return err
	})
	if err != nil {
		return "", err
	}
	return orderID, nil
}
