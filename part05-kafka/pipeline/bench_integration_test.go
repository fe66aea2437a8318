//go:build integration

package pipeline_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
	"github.com/sysdesign-masterclass/golang/part05-kafka/internal/kafkatest"
	"github.com/sysdesign-masterclass/golang/part05-kafka/orders"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pipeline"
)

// BenchmarkEndToEnd produces order events 1,000 per write (acks=all; one
// op is one write) to a 4-partition topic while a Consumer applies them
// exactly once into PostgreSQL; the clock runs from the first write to the
// last commit, after the consumer has joined its group and applied a first
// 1,000 (so a run of one op measures 1,000 events, not the group's join).
// It reports msgs/s and the p50 and p99 of each event's time from its
// producer timestamp to the commit that applied it.
func BenchmarkEndToEnd(b *testing.B) {
	if err := pipeline.Reachable(stack.KafkaBrokers(), 2*time.Second); err != nil {
		b.Skip("needs the stack's Kafka and PostgreSQL: ", err)
	}
	if err := stack.Reachable(stack.Postgres, 2*time.Second); err != nil {
		b.Skip("needs the stack's Kafka and PostgreSQL: ", err)
	}
	topic := kafkatest.Topic(b, 4)
	db := kafkatest.DB(b)
	group := kafkatest.Name("g")
	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic, Store: exactlyonce.New(db, group), Handler: orders.Apply}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic})
	defer func() { _ = w.Close(); w.Transport.(*kafka.Transport).CloseIdleConnections() }()

	const chunk = 1000
	events := kafkatest.Events(kafkatest.Name("ord"), 1000, (b.N+1)*chunk)
	msgs := make([]kafka.Message, 0, chunk)
	write := func(evs []orders.Event) {
		msgs = msgs[:0]
		for _, e := range evs {
			e.At = time.Now()
			msgs = append(msgs, e.Message())
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	wait := func(n int64) {
		deadline := time.Now().Add(5 * time.Minute)
		for c.Stats().Applied.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("applied %d of %d in 5 minutes", c.Stats().Applied.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	write(events[:chunk]) // warm up: the group joins, the connections open
	wait(chunk)
	skip := len(c.Latencies())
	b.ResetTimer()
	for i := range b.N {
		write(events[(i+1)*chunk : (i+2)*chunk])
	}
	wait(int64((b.N + 1) * chunk))
	b.StopTimer()
	lat := c.Latencies()[skip:]
	slices.Sort(lat)
	b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}
