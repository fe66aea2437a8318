//go:build integration

package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
	"github.com/sysdesign-masterclass/golang/part05-kafka/internal/kafkatest"
	"github.com/sysdesign-masterclass/golang/part05-kafka/orders"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pipeline"
)

// produce writes events to topic and requires every one acknowledged.
func produce(t *testing.T, topic string, events []orders.Event) {
	t.Helper()
	w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic})
	defer closeWriter(w)
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		msgs[i] = e.Message()
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, msgs...))
}

func closeWriter(w *kafka.Writer) {
	_ = w.Close()
	w.Transport.(*kafka.Transport).CloseIdleConnections()
}

// start runs c until the test ends (or stop is called) and returns stop,
// which waits for Run to return.
func start(t *testing.T, c *pipeline.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(time.Minute):
				assert.Fail(t, "consumer did not stop within a minute")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitApplied(t *testing.T, db *pgxpool.Pool, prefix string, n int) kafkatest.Effects {
	t.Helper()
	var e kafkatest.Effects
	kafkatest.WaitFor(t, 2*time.Minute, func() (bool, string) {
		e = kafkatest.Count(t, db, prefix)
		return e.Distinct >= n, fmt.Sprintf("%+v, want %d distinct", e, n)
	})
	return e
}

// Every event is applied once, each order's events in sequence, with 4
// partitions applied in parallel; the stored offsets end at the partitions'
// high watermarks, and the group's committed offsets follow.
func TestPipelineAppliesEveryMessageOnceInOrder(t *testing.T) {
	const partitions, orderCount, n = 4, 50, 2000
	topic := kafkatest.Topic(t, partitions)
	db := kafkatest.DB(t)
	prefix := kafkatest.Name("ord")
	produce(t, topic, kafkatest.Events(prefix, orderCount, n))

	var inside, most atomic.Int64
	group := kafkatest.Name("g")
	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic,
		Store: exactlyonce.New(db, group), MaxBatch: 50,
		Handler: func(b *pgx.Batch, m kafka.Message) error {
			if b.Len() == 0 { // a batch's first message: hold it a moment so partitions overlap
				now := inside.Add(1)
				for prev := most.Load(); now > prev && !most.CompareAndSwap(prev, now); prev = most.Load() {
				}
				time.Sleep(5 * time.Millisecond)
				inside.Add(-1)
			}
			return orders.Apply(b, m)
		}}
	stop := start(t, c)
	e := waitApplied(t, db, prefix, n)
	stop()

	assert.Equal(t, kafkatest.Effects{Orders: orderCount, Applied: n, Distinct: n}, e, "each event once, in order")
	assert.Greater(t, most.Load(), int64(1), "partitions were applied in parallel")
	ends, err := pipeline.EndOffsets(t.Context(), stack.KafkaBrokers(), topic, partitions)
	require.NoError(t, err)
	stored, err := exactlyonce.New(db, group).Offsets(t.Context(), topic)
	require.NoError(t, err)
	assert.Equal(t, ends, stored, "PostgreSQL holds each partition's next offset")
	assert.Equal(t, int64(n), c.Stats().Applied.Load())
	assert.Len(t, c.Latencies(), n)
}

// readDLT reads n messages from topic's dead-letter topic.
func readDLT(t *testing.T, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: stack.KafkaBrokers(), Topic: pipeline.DeadLetterTopic(topic), Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "dead letters read: %d of %d", len(out), n)
		out = append(out, m)
	}
	return out
}

func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// A malformed message goes to the dead-letter topic at once, a message that
// keeps failing goes there after MaxAttempts, each with the reason in its
// headers; every message around them is applied, in order.
func TestPoisonMessagesGoToTheDeadLetterTopic(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	db := kafkatest.DB(t)
	prefix := kafkatest.Name("ord")
	events := kafkatest.Events(prefix, 10, 200)
	msgs := make([]kafka.Message, 0, len(events)+1)
	for i, e := range events {
		if i == 100 {
			msgs = append(msgs, kafka.Message{Key: []byte(e.OrderID), Value: []byte(`{"id": "half a message`)})
		}
		msgs = append(msgs, e.Message())
	}
	w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic})
	require.NoError(t, w.WriteMessages(t.Context(), msgs...))
	closeWriter(w)
	const flaky = 150 // this offset's write fails every time, as if a row it needs were locked for good
	group := kafkatest.Name("g")
	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic, Store: exactlyonce.New(db, group),
		MaxAttempts: 3, Backoff: 10 * time.Millisecond,
		Handler: func(b *pgx.Batch, m kafka.Message) error {
			if m.Offset == flaky {
				return fmt.Errorf("lock timeout on offset %d", m.Offset)
			}
			return orders.Apply(b, m)
		}}
	start(t, c)
	dead := readDLT(t, topic, 2)
	e := waitApplied(t, db, prefix, len(events)-1)

	h := headers(dead[0])
	assert.Equal(t, "permanent", h[pipeline.HeaderReason])
	assert.Equal(t, "100", h[pipeline.HeaderOffset])
	assert.Equal(t, "1", h[pipeline.HeaderAttempts], "no retry for a message that cannot decode")
	assert.Contains(t, h[pipeline.HeaderError], "malformed order event")
	assert.Equal(t, topic, h[pipeline.HeaderTopic])
	assert.Equal(t, `{"id": "half a message`, string(dead[0].Value), "the message as it was")
	h = headers(dead[1])
	assert.Equal(t, "attempts", h[pipeline.HeaderReason])
	assert.Equal(t, fmt.Sprint(flaky), h[pipeline.HeaderOffset])
	assert.Equal(t, "3", h[pipeline.HeaderAttempts])
	assert.Contains(t, h[pipeline.HeaderError], "lock timeout")

	assert.Equal(t, len(events)-1, e.Applied, "every other event applied: the partition kept flowing")
	assert.Zero(t, e.Replays)
	var rows int
	require.NoError(t, db.QueryRow(t.Context(), `SELECT count(*) FROM part05.dead_letters WHERE group_id = $1`, group).Scan(&rows))
	assert.Equal(t, 2, rows, "both recorded with the offsets they let pass")
}

// A partition resumes at the offset PostgreSQL holds, not at the group's:
// the group has committed nothing, PostgreSQL says 60 of 100 are applied,
// and only the last 40 are.
func TestConsumerResumesFromStoredOffsets(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	db := kafkatest.DB(t)
	prefix := kafkatest.Name("ord")
	produce(t, topic, kafkatest.Events(prefix, 100, 100)) // one event per order: which orders got one says which offsets ran
	group := kafkatest.Name("g")
	store := exactlyonce.New(db, group)
	first := make([]kafka.Message, 60)
	for i := range first {
		first[i] = kafka.Message{Topic: topic, Offset: int64(i)}
	}
	_, err := store.Apply(t.Context(), topic, 0, first, func(*pgx.Batch, kafka.Message) error { return nil }, nil) // applied elsewhere
	require.NoError(t, err)

	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic, Store: store, Handler: orders.Apply}
	stop := start(t, c)
	e := waitApplied(t, db, prefix, 40)
	stop()
	assert.Equal(t, 40, e.Applied)
	var lowest int
	require.NoError(t, db.QueryRow(t.Context(), `SELECT min("offset") FROM part05.applied_events WHERE order_id LIKE $1 || '-%'`, prefix).Scan(&lowest))
	assert.Equal(t, 60, lowest)
	assert.Equal(t, int64(40), c.Stats().Applied.Load())
	assert.Zero(t, c.Stats().Skipped.Load(), "nothing re-read: it started at 60")
}

// The article's at-least-once default (its diagram): FetchMessage, the DB
// write in its own transaction, CommitMessages. A crash between the write
// and the commit re-delivers the message to the next consumer, which writes
// it again. The same crash with exactlyonce.Store writes nothing twice.
func TestArticleAtLeastOnceWritesTwiceAfterACrash(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	db := kafkatest.DB(t)
	prefix := kafkatest.Name("ord")
	produce(t, topic, kafkatest.Events(prefix, 50, 50))
	table := `part05."` + kafkatest.Name("article_orders") + `"`
	_, err := db.Exec(t.Context(), `CREATE TABLE `+table+` (data bytea, created_at timestamptz)`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), `DROP TABLE `+table) })
	group := kafkatest.Name("g")
	consume := func(crashAt int64) {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: stack.KafkaBrokers(), Topic: topic, GroupID: group, MaxWait: 100 * time.Millisecond})
		defer r.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		for {
			m, err := r.FetchMessage(ctx)
			require.NoError(t, err)
			_, err = db.Exec(ctx, `INSERT INTO `+table+` VALUES ($1, now())`, m.Value)
			require.NoError(t, err)
			if m.Offset == crashAt {
				return // the process dies here: written, not committed
			}
			require.NoError(t, r.CommitMessages(ctx, m))
			if m.Offset == 49 {
				return
			}
		}
	}
	consume(30)
	consume(-1)
	var rows, distinct int
	require.NoError(t, db.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT data) FROM `+table).Scan(&rows, &distinct))
	assert.Equal(t, 50, distinct)
	assert.Equal(t, 51, rows, "offset 30 written twice")
}

// "Messages are retained indefinitely": a topic created without settings
// keeps them for retention.ms, which the broker reports as a finite number
// (the stack's broker sets log.retention.hours=24; Kafka's default is 168,
// the article's table's 7 days). Kept forever only with retention.ms=-1.
func TestArticleRetentionIsNotIndefinite(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	v, err := pipeline.TopicConfig(t.Context(), stack.KafkaBrokers(), topic, "retention.ms")
	require.NoError(t, err)
	ms, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	t.Logf("retention.ms = %d (%v)", ms, time.Duration(ms)*time.Millisecond)
	assert.Positive(t, ms, "-1 would be forever")
	assert.LessOrEqual(t, ms, int64(7*24*time.Hour/time.Millisecond))
}

// A consumer that stops fetching because its work is slow (backpressure)
// keeps its partitions: kafka-go heartbeats from its own goroutine, so a
// transaction held for longer than the session timeout causes no
// rebalance, and every message is applied once.
func TestSlowConsumerKeepsItsPartitions(t *testing.T) {
	topic := kafkatest.Topic(t, 2)
	db := kafkatest.DB(t)
	prefix := kafkatest.Name("ord")
	produce(t, topic, kafkatest.Events(prefix, 20, 200))
	var stalled atomic.Bool
	group := kafkatest.Name("g")
	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic, Store: exactlyonce.New(db, group),
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
		Handler: func(b *pgx.Batch, m kafka.Message) error {
			if stalled.CompareAndSwap(false, true) {
				time.Sleep(8 * time.Second) // longer than the session timeout
			}
			return orders.Apply(b, m)
		}}
	stop := start(t, c)
	e := waitApplied(t, db, prefix, 200)
	stop()
	assert.Equal(t, 200, e.Applied)
	assert.Equal(t, int64(1), c.Stats().Generations.Load(), "no rebalance while the handler was stuck")
}

// topicWithMaxMessageBytes creates a one-partition topic whose batches may
// not exceed limit bytes, deleted when the test ends.
func topicWithMaxMessageBytes(t *testing.T, limit int) string {
	t.Helper()
	stack.Require(t, stack.Kafka)
	topic := kafkatest.Name("p05-max")
	cl := &kafka.Client{Addr: kafka.TCP(stack.KafkaBrokers()...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{Dial: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
	res, err := cl.CreateTopics(t.Context(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(limit)}}}}})
	cl.Transport.(*kafka.Transport).CloseIdleConnections()
	require.NoError(t, err)
	require.NoError(t, res.Errors[topic])
	t.Cleanup(func() { _ = pipeline.DeleteTopics(context.Background(), stack.KafkaBrokers(), topic) })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, pipeline.CreateTopic(ctx, stack.KafkaBrokers(), topic, 1), "wait for its leader")
	return topic
}

// logOrder reads n messages of topic's partition 0 and returns their values.
func logOrder(t *testing.T, topic string, n int) []string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: stack.KafkaBrokers(), Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out []string
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "read %d of %d", len(out), n)
		out = append(out, string(m.Value))
	}
	return out
}

// One order's 300 events, the 51st too large for the topic, through a
// writer with BatchSize 100: the batch that holds it is refused as a whole
// (kafka-go sends a partition's messages in batches of BatchSize, one after
// another, and goes on after a batch fails).
// Written in one call, events 101-300 are acknowledged while 1-100 are not:
// the log holds them ahead of 1-100, and writing the failed ones again
// (without the bad one) puts 1-100 behind them. Reordered names the
// acknowledged messages that overtook a failed one of their key. Written in
// calls of at most BatchSize messages, a partition's share of a call is one
// batch, acknowledged or refused whole, and writing a call's failures again
// before the next call keeps the order.
func TestRetryingFailedMessagesKeepsOrderOnlyWithinOneBatch(t *testing.T) {
	events := make([]kafka.Message, 300)
	for i := range events {
		events[i] = kafka.Message{Key: []byte("order-1"), Value: fmt.Appendf(nil, "%03d", i+1)}
	}
	events[50].Value = make([]byte, 20<<10) // over the topic's 16 KiB
	write := func(t *testing.T, topic string, chunk int) (reordered []int) {
		w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic, BatchSize: 100})
		defer closeWriter(w)
		for from := 0; from < len(events); from += chunk {
			call := events[from:min(from+chunk, len(events))]
			err := w.WriteMessages(t.Context(), call...)
			for _, i := range pipeline.Reordered(call, err) {
				reordered = append(reordered, from+i)
			}
			var again []kafka.Message
			for _, i := range pipeline.Unacked(len(call), err) {
				if from+i != 50 { // the producer's dead letter: the rest is written again
					again = append(again, call[i])
				}
			}
			require.NoError(t, w.WriteMessages(t.Context(), again...))
		}
		return reordered
	}
	want := make([]string, 0, 299)
	for i, m := range events {
		if i != 50 {
			want = append(want, string(m.Value))
		}
	}
	t.Run("one call of 300", func(t *testing.T) {
		topic := topicWithMaxMessageBytes(t, 16<<10)
		reordered := write(t, topic, 300)
		got := logOrder(t, topic, 299)
		assert.NotEqual(t, want, got)
		assert.Equal(t, "101", got[0], "the second batch went first")
		assert.Len(t, reordered, 200, "every acknowledged event overtook a failed one")
	})
	t.Run("calls of BatchSize", func(t *testing.T) {
		topic := topicWithMaxMessageBytes(t, 16<<10)
		assert.Empty(t, write(t, topic, 100))
		assert.Equal(t, want, logOrder(t, topic, 299), "in order")
	})
}
