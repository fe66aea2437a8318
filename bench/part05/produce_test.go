// Package part05bench compares the chapter's kafka-go producer with franz-go
// on the stack's broker: the same topic layout (4 partitions, a new topic
// per contender), the same keyed 100-byte messages, acks=all, written 1,000
// at a time by one goroutine that waits for every acknowledgement before
// the next 1,000. One op is one such call: 1,000 messages; msgs/s is
// 1,000 ÷ its time.
//
//	impl=ours               pipeline.NewWriter: acks=all, Hash balancer, BatchSize 100, BatchTimeout 1 ms
//	impl=franz              franz-go's defaults (acks=all, idempotent, murmur2 on the key, linger 10 ms)
//	                        without compression, as kafka-go's; ProduceSync
//	impl=kafkago-default    &kafka.Writer{Addr, Topic}: acks=none (nothing acknowledged), RoundRobin,
//	                        BatchSize 100, BatchTimeout 1 s
//	impl=kafkago-timeout1s  the chapter's writer with kafka-go's BatchTimeout (1 s)
//	impl=kafkago-acks1      the chapter's writer with acks=1 (the leader only)
//	impl=kafkago-batch1000  the chapter's writer with BatchSize 1000 (batches that never fill)
//
// The benchmarks skip when the stack's Kafka is down.
//
// BenchmarkProduceParallel does the same from 8 goroutines sharing one
// writer or client.
//
//	cd bench && go test -tags integration -run '^$' -bench Produce -benchmem -count 5 ./part05/
package part05bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pipeline"
)

const (
	partitions = 4
	chunk      = 1000
	valueSize  = 100
)

func topic(b *testing.B) string {
	b.Helper()
	if err := pipeline.Reachable(stack.KafkaBrokers(), 2*time.Second); err != nil {
		b.Skip("needs the stack's Kafka: ", err)
	}
	name := fmt.Sprintf("bench-p05-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pipeline.CreateTopic(ctx, stack.KafkaBrokers(), name, partitions); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = pipeline.DeleteTopics(ctx, stack.KafkaBrokers(), name)
	})
	return name
}

// value is random, so that neither client's compression (franz-go
// compresses with snappy by default; kafka-go does not) shrinks it.
var value = func() []byte { b := make([]byte, valueSize); _, _ = rand.Read(b); return b }()

func key(i int) []byte { return fmt.Appendf(nil, "order-%d", i%10_000) }

// run makes b.N calls of write, chunk messages each.
func run(b *testing.B, write func(ctx context.Context, from, n int) error) {
	b.Helper()
	ctx := context.Background()
	if err := write(ctx, 0, chunk); err != nil { // warm up: connections, metadata
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(chunk * valueSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := write(ctx, i*chunk, chunk); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "msgs/s")
}

func closeWriter(w *kafka.Writer) {
	_ = w.Close()
	if t, ok := w.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}

func kafkaGo(b *testing.B, w *kafka.Writer) {
	b.Helper()
	defer closeWriter(w)
	msgs := make([]kafka.Message, chunk)
	run(b, func(ctx context.Context, from, n int) error {
		for i := range n {
			msgs[i] = kafka.Message{Key: key(from + i), Value: value}
		}
		return w.WriteMessages(ctx, msgs[:n]...)
	})
}

func BenchmarkProduce(b *testing.B) {
	brokers := stack.KafkaBrokers()
	// Warm the broker (its JIT, its page cache) before the first contender,
	// which would otherwise pay for it: 50,000 messages, not timed.
	b.Run("warmup", func(b *testing.B) {
		w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: brokers, Topic: topic(b)})
		defer closeWriter(w)
		msgs := make([]kafka.Message, chunk)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: key(i), Value: value}
		}
		for range 50 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
		}
		b.SkipNow() // no result line: benchratio and benchstat see only the contenders
	})
	b.Run("impl=ours", func(b *testing.B) {
		kafkaGo(b, pipeline.NewWriter(pipeline.WriterConfig{Brokers: brokers, Topic: topic(b)}))
	})
	b.Run("impl=franz", func(b *testing.B) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic(b)),
			kgo.ProducerBatchCompression(kgo.NoCompression())) // as kafka-go; the values are random anyway
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		recs := make([]*kgo.Record, chunk)
		run(b, func(ctx context.Context, from, n int) error {
			for i := range n {
				recs[i] = &kgo.Record{Key: key(from + i), Value: value}
			}
			return cl.ProduceSync(ctx, recs[:n]...).FirstErr()
		})
	})
	b.Run("impl=kafkago-default", func(b *testing.B) {
		kafkaGo(b, &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic(b),
			Transport: &kafka.Transport{Dial: (&net.Dialer{}).DialContext}})
	})
	b.Run("impl=kafkago-timeout1s", func(b *testing.B) {
		kafkaGo(b, pipeline.NewWriter(pipeline.WriterConfig{Brokers: brokers, Topic: topic(b), BatchTimeout: time.Second}))
	})
	b.Run("impl=kafkago-acks1", func(b *testing.B) {
		w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: brokers, Topic: topic(b)})
		w.RequiredAcks = kafka.RequireOne
		kafkaGo(b, w)
	})
	b.Run("impl=kafkago-batch1000", func(b *testing.B) {
		kafkaGo(b, pipeline.NewWriter(pipeline.WriterConfig{Brokers: brokers, Topic: topic(b), BatchSize: 1000}))
	})
}

// BenchmarkProduceParallel is BenchmarkProduce with 8 goroutines (4 per
// CPU) sharing one writer or client, as a service's request handlers would;
// the same warmed broker, topic layout, messages and acks.
func BenchmarkProduceParallel(b *testing.B) {
	b.Run("impl=ours", func(b *testing.B) {
		w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic(b)})
		defer closeWriter(w)
		var seq atomic.Int64
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			msgs := make([]kafka.Message, chunk)
			for pb.Next() {
				from := int(seq.Add(chunk))
				for i := range msgs {
					msgs[i] = kafka.Message{Key: key(from + i), Value: value}
				}
				if err := w.WriteMessages(context.Background(), msgs...); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("impl=franz", func(b *testing.B) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers()...), kgo.DefaultProduceTopic(topic(b)), kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		var seq atomic.Int64
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			recs := make([]*kgo.Record, chunk)
			for pb.Next() {
				from := int(seq.Add(chunk))
				for i := range recs {
					recs[i] = &kgo.Record{Key: key(from + i), Value: value}
				}
				if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "msgs/s")
	})
}
