//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/outbox"
)

// TestFaultRelayKilledMidStream SIGKILLs each relay (a separate process)
// while 5,000 events stream through it and the application keeps writing,
// then starts another: every event arrives (0 lost), each aggregate's events
// arrive in the order written, and the duplicates (removed by event id) are
// at most the batch that was in flight when the relay died.
func TestFaultRelayKilledMidStream(t *testing.T) {
	for _, kind := range []string{"poll", "cdc"} {
		t.Run(kind, func(t *testing.T) { relayKilled(t, kind) })
	}
}

func relayKilled(t *testing.T, kind string) {
	stack.Require(t, stack.Postgres, stack.Kafka)
	pool, err := pgxpool.New(t.Context(), stack.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	tag := strings.ToLower(rand.Text()[:8])
	table, aggType, slot, dead := "outbox_f"+tag, "f"+tag, "part08_f"+tag, "events.dead-letter.f"+tag
	require.NoError(t, outbox.Migrate(t.Context(), pool, table))
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS part08."+table) })
	topics := &outbox.Topics{Brokers: stack.KafkaBrokers(), Partitions: 3}
	require.NoError(t, topics.Ensure(t.Context(), outbox.Topic(aggType), dead))
	if kind == "cdc" {
		require.NoError(t, outbox.Setup(t.Context(), pool, table, slot, slot+"_pub"))
		t.Cleanup(func() {
			assert.NoError(t, outbox.Teardown(context.Background(), pool, slot, slot+"_pub"), "drop the slot, or WAL piles up")
		})
	}
	const batch, total, perTx = 100, 5000, 10
	args := []string{"relay", "-kind", kind, "-table", table, "-slot", slot, "-aggregates", aggType, "-dead-letter", dead,
		"-batch", "100", "-interval", "10ms"}

	// The consumer: every message, counted and checked as it comes.
	var (
		mu       sync.Mutex
		tally    outbox.Tally
		badMsg   error
		distinct atomic.Int64
	)
	cctx, stopConsumer := context.WithTimeout(t.Context(), 4*time.Minute)
	defer stopConsumer()
	consumed := make(chan error, 1)
	go func() {
		consumed <- outbox.Consume(cctx, stack.KafkaBrokers(), outbox.Topic(aggType), func(m kafka.Message) bool {
			mu.Lock()
			defer mu.Unlock()
			d, err := outbox.Decode(m)
			if err == nil {
				err = tally.Add(d)
			}
			if err != nil {
				badMsg = err
				return false
			}
			distinct.Store(int64(tally.Distinct()))
			return tally.Distinct() < total
		})
	}()
	// The application: 5,000 events, 10 per transaction, paced so the stream
	// is still going when the relay dies.
	wrote := make(chan error, 1)
	go func() {
		_, err := outbox.Load{Table: table, AggregateType: aggType, Aggregates: 50, PerAggregate: total / 50, PerTx: perTx,
			Pace: time.Millisecond}.Run(cctx, pool)
		wrote <- err
	}()

	first := startChild(t, "relay: "+kind, args...)
	deadline := time.After(2 * time.Minute)
	for distinct.Load() < 1500 { // the relay got going
		select {
		case err := <-consumed:
			require.FailNow(t, "the consumer stopped", "%v; bad message: %v", err, badMsg)
		case err := <-first.done:
			require.FailNow(t, "the relay exited", "%v; its output:\n%s", err, first.lastLines())
		case <-deadline:
			require.FailNow(t, "the relay delivered too little", "%d events in 2 minutes; its output:\n%s", distinct.Load(), first.lastLines())
		case <-time.After(5 * time.Millisecond):
		}
	}
	first.kill(t)
	atKill := distinct.Load()
	startChild(t, "relay: "+kind, args...)

	require.NoError(t, <-wrote, "writing the events")
	select {
	case err := <-consumed:
		require.NoError(t, err)
	case <-time.After(4 * time.Minute):
		require.FailNow(t, "the consumer did not finish")
	}
	mu.Lock()
	defer mu.Unlock()
	require.NoError(t, badMsg)
	t.Logf("%s relay SIGKILLed after %d events: %d written, %d received, %d distinct (lost %d), %d duplicates removed by event id, %d out of order",
		kind, atKill, total, tally.Received, tally.Distinct(), total-tally.Distinct(), tally.Duplicates, tally.OutOfOrder)
	assert.Equal(t, total, tally.Distinct(), "lost events")
	assert.Zero(t, tally.OutOfOrder, "per-aggregate order")
	assert.LessOrEqual(t, tally.Duplicates, batch+perTx, "duplicates beyond the batch in flight")
	if kind == "poll" {
		var left int
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM part08."+table).Scan(&left))
		assert.Zero(t, left, "rows left in the outbox")
	}
}
