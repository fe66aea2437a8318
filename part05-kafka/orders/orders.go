// Package orders is the chapter's business event: an order's lifecycle
// (created, paid, shipped, cancelled) as JSON Kafka messages keyed by order
// ID, its strict decoder, and the PostgreSQL write the consumer applies
// exactly once (exactlyonce.Handler).
//
// The write is deliberately not idempotent by itself (it counts events per
// order), so a message applied twice shows up as a count, and it checks the
// per-order sequence, so a message applied out of order shows up too. It is
// keyed by the event's ID, which stops the duplicates a retrying producer
// writes at a second offset; those are counted as well.
package orders

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
)

// Event is one step of an order's life.
type Event struct {
	ID      string    `json:"id"`       // unique per event: the idempotency key of its effect
	OrderID string    `json:"order_id"` // the aggregate, and the message key: one order, one partition
	Seq     int       `json:"seq"`      // 1, 2, ... within the order
	Type    string    `json:"type"`     // created | paid | shipped | cancelled
	Amount  int64     `json:"amount"`   // in the smallest currency unit
	At      time.Time `json:"at"`       // when it was produced: end-to-end latency
}

// Types are the event types, in lifecycle order.
var Types = []string{"created", "paid", "shipped", "cancelled"}

// MaxValue bounds a message's value; the decoder refuses anything larger.
const MaxValue = 4 << 10

// Message encodes e as a Kafka message keyed by its order.
func (e Event) Message() kafka.Message {
	v, _ := json.Marshal(e) // a struct of strings, ints and a time: never fails
	return kafka.Message{Key: []byte(e.OrderID), Value: v, Time: e.At}
}

// ErrMalformed wraps every decoding and validation error; they are permanent.
var ErrMalformed = errors.New("malformed order event")

// Decode parses and validates a message: JSON with exactly Event's fields,
// every field present and in range, and the key equal to the order ID (a
// message on the wrong key would be on the wrong partition and lose its
// order). Errors wrap ErrMalformed.
func Decode(key, value []byte) (Event, error) {
	var e Event
	fail := func(format string, args ...any) (Event, error) {
		return Event{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	if len(value) > MaxValue {
		return fail("value is %d bytes, over %d", len(value), MaxValue)
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return fail("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail("data after the JSON object")
	}
	switch {
	case e.ID == "" || len(e.ID) > 64:
		return fail("id must be 1..64 bytes")
	case e.OrderID == "" || len(e.OrderID) > 64:
		return fail("order_id must be 1..64 bytes")
	case string(key) != e.OrderID:
		return fail("key %q is not the order_id %q", key, e.OrderID)
	case e.Seq < 1:
		return fail("seq %d, want 1 or more", e.Seq)
	case e.Amount < 0:
		return fail("amount %d is negative", e.Amount)
	case e.At.IsZero():
		return fail("at is missing")
	}
	for _, t := range Types {
		if e.Type == t {
			return e, nil
		}
	}
	return fail("type %q, want one of %v", e.Type, Types)
}

// Tables is the DDL of the business tables, for exactlyonce.Migrate.
var Tables = []string{
	`CREATE TABLE IF NOT EXISTS ` + exactlyonce.Schema + `.orders (
		order_id     text   PRIMARY KEY,
		status       text   NOT NULL,
		amount       bigint NOT NULL,
		events       int    NOT NULL, -- events applied: one more per effect
		last_seq     int    NOT NULL,
		out_of_order int    NOT NULL DEFAULT 0) -- events applied after a later one of the same order`,
	`CREATE TABLE IF NOT EXISTS ` + exactlyonce.Schema + `.applied_events (
		event_id      text   PRIMARY KEY,
		order_id      text   NOT NULL,
		topic         text   NOT NULL,
		partition     int    NOT NULL,
		"offset"      bigint NOT NULL,
		replays       int    NOT NULL DEFAULT 0, -- the same offset applied again: must stay 0
		producer_dups int    NOT NULL DEFAULT 0, -- the same event at another offset (a producer retry), not applied
		at            timestamptz NOT NULL,
		applied_at    timestamptz NOT NULL DEFAULT clock_timestamp())`,
}

// apply records the event (or counts the repeat) and, the first time only,
// updates its order, in one statement.
const apply = `
WITH ev AS (
	INSERT INTO ` + exactlyonce.Schema + `.applied_events AS a (event_id, order_id, topic, partition, "offset", at)
	VALUES ($1, $2, $7, $8, $9, $6)
	ON CONFLICT (event_id) DO UPDATE SET
		replays       = a.replays + (a."offset" = EXCLUDED."offset")::int,
		producer_dups = a.producer_dups + (a."offset" <> EXCLUDED."offset")::int
	RETURNING (xmax = 0) AS inserted)
INSERT INTO ` + exactlyonce.Schema + `.orders AS o (order_id, status, amount, events, last_seq, out_of_order)
SELECT $2, $3, $4, 1, $5, ($5 <> 1)::int FROM ev WHERE inserted
ON CONFLICT (order_id) DO UPDATE SET
	status       = EXCLUDED.status,
	amount       = GREATEST(o.amount, EXCLUDED.amount),
	events       = o.events + 1,
	last_seq     = GREATEST(o.last_seq, EXCLUDED.last_seq),
	out_of_order = o.out_of_order + (EXCLUDED.last_seq <> o.last_seq + 1)::int`

// Apply is the exactlyonce.Handler of order events: a message that does not
// decode is a permanent error (the consumer sends it to the dead-letter
// topic); the rest queue one statement each.
func Apply(b *pgx.Batch, m kafka.Message) error {
	e, err := Decode(m.Key, m.Value)
	if err != nil {
		return exactlyonce.Permanent(err)
	}
	b.Queue(apply, e.ID, e.OrderID, e.Type, e.Amount, e.Seq, e.At, m.Topic, m.Partition, m.Offset)
	return nil
}
