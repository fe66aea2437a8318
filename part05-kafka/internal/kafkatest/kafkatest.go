// Package kafkatest holds what the chapter's integration tests share: a
// topic of their own on the stack's Kafka, the stack's PostgreSQL with the
// chapter's tables, order events to produce, and the effects counted back.
package kafkatest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
	"github.com/sysdesign-masterclass/golang/part05-kafka/orders"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pipeline"
)

var seq atomic.Int64

// Name returns a name no other test (or earlier run) uses.
func Name(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// Topic creates a topic and its dead-letter topic with partitions
// partitions on the stack's Kafka, deleted when the test ends.
func Topic(t testing.TB, partitions int) string {
	t.Helper()
	stack.Require(t, stack.Kafka)
	topic := Name("p05")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := stack.KafkaBrokers()
	require.NoError(t, pipeline.CreateTopic(ctx, brokers, topic, partitions))
	require.NoError(t, pipeline.CreateTopic(ctx, brokers, pipeline.DeadLetterTopic(topic), 1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pipeline.DeleteTopics(ctx, brokers, topic, pipeline.DeadLetterTopic(topic)); err != nil {
			t.Logf("delete topics: %v", err)
		}
	})
	return topic
}

// DB connects to the stack's PostgreSQL and creates the chapter's tables.
func DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	stack.Require(t, stack.Postgres)
	db, err := pgxpool.New(context.Background(), stack.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(db.Close)
	require.NoError(t, exactlyonce.Migrate(t.Context(), db, orders.Tables...))
	return db
}

// Events returns n events over orders orders (IDs prefix-0 ...), each
// order's events in sequence, interleaved across orders as a busy shop would
// produce them.
func Events(prefix string, orderCount, n int) []orders.Event {
	out := make([]orders.Event, 0, n)
	next := make([]int, orderCount)
	for i := range n {
		o := i % orderCount
		next[o]++
		out = append(out, orders.Event{
			ID:      fmt.Sprintf("%s-%d-%d", prefix, o, next[o]),
			OrderID: fmt.Sprintf("%s-%d", prefix, o),
			Seq:     next[o],
			Type:    orders.Types[min(next[o]-1, len(orders.Types)-1)],
			Amount:  int64(100 + o),
			At:      time.Now(),
		})
	}
	return out
}

// Effects are the orders' effects counted in PostgreSQL.
type Effects struct {
	Orders     int // orders with at least one event applied
	Applied    int // events applied (orders.events summed): one per effect
	Distinct   int // distinct events recorded
	Replays    int // an offset applied twice: a duplicated effect
	ProdDups   int // an event seen again at another offset (a producer retry), not applied
	OutOfOrder int // events applied after a later event of their order
}

// Count reads the effects of the orders whose IDs start with prefix.
func Count(t testing.TB, db *pgxpool.Pool, prefix string) Effects {
	t.Helper()
	var e Effects
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One statement: one snapshot, so the two tables agree with each other.
	require.NoError(t, db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM `+exactlyonce.Schema+`.orders WHERE order_id LIKE $1 || '-%'),
		(SELECT coalesce(sum(events), 0) FROM `+exactlyonce.Schema+`.orders WHERE order_id LIKE $1 || '-%'),
		(SELECT coalesce(sum(out_of_order), 0) FROM `+exactlyonce.Schema+`.orders WHERE order_id LIKE $1 || '-%'),
		(SELECT count(*) FROM `+exactlyonce.Schema+`.applied_events WHERE order_id LIKE $1 || '-%'),
		(SELECT coalesce(sum(replays), 0) FROM `+exactlyonce.Schema+`.applied_events WHERE order_id LIKE $1 || '-%'),
		(SELECT coalesce(sum(producer_dups), 0) FROM `+exactlyonce.Schema+`.applied_events WHERE order_id LIKE $1 || '-%')`,
		prefix).Scan(&e.Orders, &e.Applied, &e.OutOfOrder, &e.Distinct, &e.Replays, &e.ProdDups))
	return e
}

// WaitFor polls cond every 100 ms until it holds or timeout passes, and
// fails the test with what cond last said.
func WaitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "condition not met in "+timeout.String(), state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
