//go:build integration

package outbox

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// relayOf is a relay of kind ("poll" or "cdc") on f, publishing through pub;
// dsn is the CDC relay's replication connection string.
func (f fixture) relayOf(t *testing.T, kind string, pub Publisher, dsn string) interface{ Run(context.Context) error } {
	t.Helper()
	if kind == "poll" {
		return &Poller{Pool: f.pool, Table: f.table, Publisher: pub, Router: f.router(), Topics: f.topics, Interval: 10 * time.Millisecond,
			Retried: func(err error) { t.Logf("poller retries after: %v", err) }}
	}
	slot := "part08_it_" + f.tag
	require.NoError(t, Setup(t.Context(), f.pool, f.table, slot, slot+"_pub"))
	t.Cleanup(func() { assert.NoError(t, Teardown(context.Background(), f.pool, slot, slot+"_pub")) })
	return &CDC{DSN: dsn, Slot: slot, Publication: slot + "_pub", Publisher: pub, Router: f.router(), Topics: f.topics,
		Retried: func(err error) { t.Logf("CDC relay reconnects after: %v", err) }}
}

// runRelay runs relay until the test ends and returns a channel that gets
// its error if it stops before that.
func runRelay(t *testing.T, relay interface{ Run(context.Context) error }) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stopped, done := make(chan error, 1), make(chan error, 1)
	go func() {
		err := relay.Run(ctx)
		if ctx.Err() == nil {
			stopped <- err
		}
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return stopped
}

// deadLetters reads n dead letters' reasons from f's dead-letter topic.
func (f fixture) deadLetters(t *testing.T, n int) map[string]string {
	t.Helper()
	reasons := map[string]string{}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, Consume(ctx, stack.KafkaBrokers(), f.deadLetter, func(m kafka.Message) bool {
		var body struct{ AggregateID string }
		if json.Unmarshal(m.Value, &body) == nil {
			reasons[body.AggregateID] = header(m, HeaderReason)
		}
		return len(reasons) < n
	}))
	require.Len(t, reasons, n, "dead letters within a minute")
	return reasons
}

// An event too large for a Kafka message (its payload over the router's
// limit, or under it with the key and headers pushing the message over
// Kafka's 1 MiB) is dead-lettered with the reason and without its payload,
// and the events behind it still flow. Before, the dead letter carried the
// whole payload, the writer refused it (MessageTooLargeError, not
// temporary), the relay stopped, and a restarted relay read the same row
// first again: one large row stalled the outbox for good.
//
// With a router limit above Kafka's (or a broker configured below the
// router's), Kafka refuses the batch; the relay then writes one event at a
// time and dead-letters the one refused alone.
func TestOversizedEventIsDeadLettered(t *testing.T) {
	for _, kind := range []string{"poll", "cdc", "poll/limit-above-kafka", "cdc/limit-above-kafka"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			w := NewWriter(stack.KafkaBrokers())
			defer func() { assert.NoError(t, CloseWriter(w)) }()
			relay := f.relayOf(t, strings.TrimSuffix(kind, "/limit-above-kafka"), w, stack.DatabaseURL())
			if strings.HasSuffix(kind, "/limit-above-kafka") {
				switch r := relay.(type) {
				case *Poller:
					r.Router.MaxMessage = 8 << 20
				case *CDC:
					r.Router.MaxMessage = 8 << 20
				}
			}
			big := func(n int) json.RawMessage { return json.RawMessage(`{"a":"` + strings.Repeat("x", n) + `"}`) }
			require.NoError(t, pgx.BeginFunc(t.Context(), f.pool, func(tx pgx.Tx) error {
				for _, ev := range []Event{
					{AggregateType: f.aggType, AggregateID: "over-limit", EventType: "BIG", Payload: big(3 << 20)},
					{AggregateType: f.aggType, AggregateID: "just-under", EventType: "BIG", Payload: big(1<<20 - 100)},
				} {
					if _, err := Insert(t.Context(), tx, f.table, ev); err != nil {
						return err
					}
				}
				return nil
			}))
			n, err := Load{Table: f.table, AggregateType: f.aggType, Aggregates: 5, PerAggregate: 10, PerTx: 5}.Run(t.Context(), f.pool)
			require.NoError(t, err)
			tally := consume(t, Topic(f.aggType), n, runRelay(t, relay))
			assert.Equal(t, n, tally.Distinct())
			reasons := f.deadLetters(t, 2)
			assert.Contains(t, reasons["over-limit"], "too large")
			assert.Contains(t, reasons["just-under"], "too large")
		})
	}
}

// A payload of 200 KB is TOASTed (compressed, out of line) by PostgreSQL;
// pgoutput sends an insert's TOASTed values whole, and the event arrives
// byte for byte.
func TestLargePayloadArrivesWhole(t *testing.T) {
	for _, kind := range []string{"poll", "cdc"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			w := NewWriter(stack.KafkaBrokers())
			defer func() { assert.NoError(t, CloseWriter(w)) }()
			relay := f.relayOf(t, kind, w, stack.DatabaseURL())
			var sb strings.Builder
			for i := 0; sb.Len() < 200_000; i++ {
				sb.WriteString(`"k` + strings.Repeat("y", i%50) + `",`)
			}
			payload := `{"n":0,"list":[` + strings.TrimSuffix(sb.String(), ",") + `]}`
			require.NoError(t, pgx.BeginFunc(t.Context(), f.pool, func(tx pgx.Tx) error {
				_, err := Insert(t.Context(), tx, f.table, Event{AggregateType: f.aggType, AggregateID: "agg-000", EventType: "BIG", Payload: json.RawMessage(payload)})
				return err
			}))
			var toasted bool
			require.NoError(t, f.pool.QueryRow(t.Context(), `SELECT pg_column_size(payload) < octet_length(payload::text) FROM part08.`+f.table).Scan(&toasted))
			require.True(t, toasted, "the payload is stored compressed")
			var got []byte
			stopped := runRelay(t, relay)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			relayErr := make(chan error, 1)
			go func() {
				select {
				case err := <-stopped:
					relayErr <- err
					cancel()
				case <-ctx.Done():
				}
			}()
			err := Consume(ctx, stack.KafkaBrokers(), Topic(f.aggType), func(m kafka.Message) bool {
				got = m.Value
				return false
			})
			select {
			case err := <-relayErr:
				require.FailNow(t, "the relay stopped", "%v", err)
			default:
			}
			require.NoError(t, err)
			var want, have any
			require.NoError(t, json.Unmarshal([]byte(payload), &want))
			require.NoError(t, json.Unmarshal(got, &have))
			assert.Equal(t, want, have)
		})
	}
}

// batchSizes records the largest write a relay made.
type batchSizes struct {
	Publisher
	mu  sync.Mutex
	max int
}

func (b *batchSizes) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	b.mu.Lock()
	b.max = max(b.max, len(msgs))
	b.mu.Unlock()
	return b.Publisher.WriteMessages(ctx, msgs...)
}

// A transaction of 2,000 outbox rows reaches the CDC relay as one stream
// between BEGIN and COMMIT. The relay publishes it in writes of at most Batch
// events and confirms the slot only at the COMMIT: its memory is bounded by
// the batch, not by the largest transaction. Before, it held every event of
// the transaction and wrote them in one call.
func TestCDCPublishesALargeTransactionInBatches(t *testing.T) {
	f := newFixture(t)
	w := NewWriter(stack.KafkaBrokers())
	defer func() { assert.NoError(t, CloseWriter(w)) }()
	pub := &batchSizes{Publisher: w}
	relay := f.relayOf(t, "cdc", pub, stack.DatabaseURL())
	n, err := Load{Table: f.table, AggregateType: f.aggType, Aggregates: 20, PerAggregate: 100, PerTx: 2000}.Run(t.Context(), f.pool)
	require.NoError(t, err)
	tally := consume(t, Topic(f.aggType), n, runRelay(t, relay))
	assert.Zero(t, tally.OutOfOrder)
	pub.mu.Lock()
	defer pub.mu.Unlock()
	assert.LessOrEqual(t, pub.max, 100, "events per write")
}

// The CDC relay reads created_at as the replication session prints it,
// which depends on the server's TimeZone: a half-hour zone prints +05:30.
// Before, that failed the "-07" layout and every event was dead-lettered.
func TestCDCReadsTimestampsInAnyTimeZone(t *testing.T) {
	f := newFixture(t)
	w := NewWriter(stack.KafkaBrokers())
	defer func() { assert.NoError(t, CloseWriter(w)) }()
	dsn := withOptions(stack.DatabaseURL(), "-c TimeZone=Asia/Kolkata")
	relay := f.relayOf(t, "cdc", w, dsn)
	n, err := Load{Table: f.table, AggregateType: f.aggType, Aggregates: 5, PerAggregate: 10, PerTx: 5}.Run(t.Context(), f.pool)
	require.NoError(t, err)
	tally := consume(t, Topic(f.aggType), n, runRelay(t, relay))
	assert.Equal(t, n, tally.Distinct())
}

// withOptions adds server options (options=-c name=value) to a URL DSN.
func withOptions(dsn, opts string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "options=" + strings.NewReplacer(" ", "%20", "=", "%3D", "/", "%2F").Replace(opts)
}
