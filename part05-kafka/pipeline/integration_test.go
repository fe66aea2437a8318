//go:build integration

package pipeline_test

import (
	"context"
	"fmt"
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
