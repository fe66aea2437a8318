//go:build integration

package outbox

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// fixture is a private outbox table, aggregate type and dead-letter topic.
type fixture struct {
	pool            *pgxpool.Pool
	table, aggType  string
	deadLetter, tag string
	topics          *Topics
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	stack.Require(t, stack.Postgres, stack.Kafka)
	pool, err := pgxpool.New(t.Context(), stack.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	tag := strings.ToLower(rand.Text()[:8])
	f := fixture{pool: pool, table: "outbox_" + tag, aggType: "it" + tag, deadLetter: "events.dead-letter." + tag, tag: tag,
		topics: &Topics{Brokers: stack.KafkaBrokers(), Partitions: 3}}
	require.NoError(t, Migrate(t.Context(), pool, f.table))
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS part08."+f.table) })
	require.NoError(t, f.topics.Ensure(t.Context(), Topic(f.aggType), f.deadLetter))
	return f
}

func (f fixture) router() Router {
	return Router{Known: map[string]bool{f.aggType: true}, DeadLetterTopic: f.deadLetter}
}

// consume reads topic until want distinct events arrived, or the relay
// stopped (relayDone: its error).
func consume(t *testing.T, topic string, want int, relayDone <-chan error) *Tally {
	t.Helper()
	var tally Tally
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var relayErr error
	go func() {
		select {
		case relayErr = <-relayDone:
			cancel()
		case <-ctx.Done():
		}
	}()
	var bad error
	err := Consume(ctx, stack.KafkaBrokers(), topic, func(m kafka.Message) bool {
		d, err := Decode(m)
		if err == nil {
			err = tally.Add(d)
		}
		if err != nil {
			bad = err
			return false
		}
		return tally.Distinct() < want
	})
	require.NoError(t, bad)
	require.NoError(t, err, "consumed %d of %d; relay: %v", tally.Distinct(), want, relayErr)
	return &tally
}

// Both relays deliver every event once (here: no crash, so no duplicate), in
// each aggregate's order, and dead-letter the bad rows without stopping.
func TestRelaysDeliverInOrder(t *testing.T) {
	for _, kind := range []string{"poll", "poll-mark", "cdc"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			w := NewWriter(stack.KafkaBrokers())
			defer func() { assert.NoError(t, CloseWriter(w)) }()
			var relay interface{ Run(context.Context) error }
			if kind != "cdc" {
				relay = &Poller{Pool: f.pool, Table: f.table, Publisher: w, Router: f.router(), Topics: f.topics, Interval: 10 * time.Millisecond,
					Mark: kind == "poll-mark"}
			} else {
				slot := "part08_it_" + f.tag
				require.NoError(t, Setup(t.Context(), f.pool, f.table, slot, slot+"_pub"))
				t.Cleanup(func() { assert.NoError(t, Teardown(context.Background(), f.pool, slot, slot+"_pub")) })
				relay = &CDC{DSN: stack.DatabaseURL(), Slot: slot, Publication: slot + "_pub", Publisher: w, Router: f.router(), Topics: f.topics}
			}
			// Bad rows first: they must not block what follows.
			require.NoError(t, pgx.BeginFunc(t.Context(), f.pool, func(tx pgx.Tx) error {
				_, err := Insert(t.Context(), tx, f.table, Event{AggregateType: "nobody-" + f.tag, AggregateID: "x", EventType: "E", Payload: json.RawMessage(`{}`)})
				if err == nil {
					_, err = Insert(t.Context(), tx, f.table, Event{AggregateType: f.aggType, AggregateID: "x", EventType: "E", Payload: json.RawMessage(`[1]`)})
				}
				return err
			}))
			n, err := Load{Table: f.table, AggregateType: f.aggType, Aggregates: 10, PerAggregate: 30, PerTx: 7}.Run(t.Context(), f.pool)
			require.NoError(t, err)
			require.Equal(t, 300, n)

			ctx, cancel := context.WithCancel(t.Context())
			done, stopped := make(chan error, 1), make(chan error, 1)
			go func() {
				err := relay.Run(ctx)
				if err != nil {
					stopped <- err
				}
				done <- err
			}()
			tally := consume(t, Topic(f.aggType), 300, stopped)
			assert.Zero(t, tally.OutOfOrder, "per-aggregate order")
			assert.Zero(t, tally.Duplicates, "no crash, no duplicate")

			var reasons []string
			require.NoError(t, Consume(t.Context(), stack.KafkaBrokers(), f.deadLetter, func(m kafka.Message) bool {
				for _, h := range m.Headers {
					if h.Key == HeaderReason {
						reasons = append(reasons, string(h.Value))
					}
				}
				return len(reasons) < 2
			}))
			assert.ElementsMatch(t, []string{`unknown aggregate type "nobody-` + f.tag + `"`, "payload is not one JSON object"}, reasons)
			cancel()
			require.NoError(t, <-done)
			var left, unpublished int
			require.NoError(t, f.pool.QueryRow(t.Context(), "SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM part08."+f.table).Scan(&left, &unpublished))
			switch kind {
			case "poll":
				assert.Zero(t, left, "published rows are deleted")
			case "poll-mark":
				assert.Equal(t, []int{302, 0}, []int{left, unpublished}, "published rows are kept, marked")
			}
		})
	}
}

// The order and its event commit together or not at all: an event PostgreSQL
// refuses (a payload that is not JSON) rolls the order back with it.
func TestOrderAndEventCommitTogether(t *testing.T) {
	stack.Require(t, stack.Postgres)
	pool, err := pgxpool.New(t.Context(), stack.DatabaseURL())
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, Migrate(t.Context(), pool, DefaultTable))
	user := "atomic-" + strings.ToLower(rand.Text()[:8])
	err = pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `INSERT INTO part08.outbox_orders (user_id, amount, status) VALUES ($1, 1, 'pending')`, user); err != nil {
			return err
		}
		_, err := Insert(t.Context(), tx, DefaultTable, Event{AggregateType: "order", AggregateID: user, EventType: "ORDER_CREATED", Payload: json.RawMessage(`{"broken":`)})
		return err
	})
	require.ErrorContains(t, err, "invalid input syntax for type json")
	var orders int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM part08.outbox_orders WHERE user_id = $1`, user).Scan(&orders))
	assert.Zero(t, orders, "the order rolled back with its event")

	id, err := CreateOrder(t.Context(), pool, user, 4990)
	require.NoError(t, err)
	var events int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM part08.outbox WHERE aggregate_id = $1 AND event_type = 'ORDER_CREATED'`, id).Scan(&events))
	assert.Equal(t, 1, events, "CreateOrder: the order and one event")
}
