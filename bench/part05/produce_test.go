// Package part05bench compares the chapter's kafka-go producer with franz-go
// on the stack's broker: the same topic layout (4 partitions, a new topic
// per contender), the same keyed 100-byte random values (no compression on
// either side), acks=all, written 1,000 at a time by callers that wait for
// every acknowledgement before the next 1,000.
//
// BenchmarkProducePaired is the comparison: the contenders take turns, so
// they meet the same load, and it measures the settings one at a time.
// BenchmarkProduce runs each contender on its own (one op is one call of
// 1,000 messages; benchratio prints each one's time against ours), and
// kafka-go's defaults, which take a second a call:
//
//	impl=ours               pipeline.NewWriter: acks=all, Hash balancer, BatchSize 1000, BatchTimeout 250 µs
//	impl=franz              franz-go's defaults (acks=all, idempotent, murmur2 on the key) without
//	                        compression, as kafka-go's; ProduceSync
//	impl=kafkago-default    &kafka.Writer{Addr, Topic}: acks=none (nothing acknowledged), RoundRobin,
//	                        BatchSize 100, BatchTimeout 1 s
//	impl=kafkago-timeout1s  the chapter's writer with kafka-go's BatchTimeout (1 s)
//
// The benchmarks skip when the stack's Kafka is down.
//
//	cd bench && go test -tags integration -run '^$' -bench Produce -benchmem -count 5 ./part05/
package part05bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"syscall"
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
}

// contender writes chunk messages, keys from..from+chunk, and waits for
// every acknowledgement.
type contender struct {
	name  string
	write func(ctx context.Context, from int) error
	close func()
}

func kafkaGoContender(name string, w *kafka.Writer) contender {
	var pool = sync.Pool{New: func() any { msgs := make([]kafka.Message, chunk); return &msgs }}
	return contender{name: name, close: func() { closeWriter(w) }, write: func(ctx context.Context, from int) error {
		p := pool.Get().(*[]kafka.Message)
		defer pool.Put(p)
		msgs := *p
		for i := range msgs {
			msgs[i] = kafka.Message{Key: key(from + i), Value: value}
		}
		return w.WriteMessages(ctx, msgs...)
	}}
}

func franzContender(b *testing.B, topic string) contender {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers()...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	var pool = sync.Pool{New: func() any { recs := make([]*kgo.Record, chunk); return &recs }}
	return contender{name: "franz", close: cl.Close, write: func(ctx context.Context, from int) error {
		p := pool.Get().(*[]*kgo.Record)
		defer pool.Put(p)
		recs := *p
		for i := range recs {
			recs[i] = &kgo.Record{Key: key(from + i), Value: value}
		}
		return cl.ProduceSync(ctx, recs...).FirstErr()
	}}
}

// BenchmarkProducePaired runs the contenders in turns on the same broker,
// each on its own 4-partition topic. A turn is one call of 1,000 keyed
// 100-byte messages from each of goroutines goroutines sharing the
// contender's writer or client; an op is 10 rounds in which every
// contender takes a turn, the order rotating from round to round. On a
// machine whose load changes from second to second, separate runs of each
// contender (BenchmarkProduce) compare different loads; turns a few
// milliseconds apart compare the same. It reports each contender's msgs/s
// over its own turns, its throughput as a multiple of ours (NAME-x-ours;
// 0.80 means 80 % of ours), and the CPU time this process (the clients:
// the broker is another process) spent per message during its turns
// (NAME-cpu-ns/msg).
//
//	ours                  pipeline.NewWriter: acks=all, Hash, BatchSize 1000, BatchTimeout 250 µs
//	franz                 franz-go: acks=all, idempotent, murmur2 on the key, no compression,
//	                      ProduceSync (which stops lingering once the call's records are queued)
//	kafkago-batch100-1ms  ours with kafka-go's BatchSize (100) and BatchTimeout 1 ms: a call's
//	                      250 messages a partition in 3 requests, one after another
//	kafkago-1ms           ours with BatchTimeout 1 ms: each call's partial batches wait 1 ms
//	kafkago-50us          ours with BatchTimeout 50 µs
//	kafkago-acks1         ours with acks=1
func BenchmarkProducePaired(b *testing.B) {
	brokers := stack.KafkaBrokers()
	for _, goroutines := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			writer := func(name string, cfg pipeline.WriterConfig, acks kafka.RequiredAcks) contender {
				cfg.Brokers, cfg.Topic = brokers, topic(b)
				w := pipeline.NewWriter(cfg)
				w.RequiredAcks = acks
				return kafkaGoContender(name, w)
			}
			cs := []contender{
				writer("ours", pipeline.WriterConfig{}, kafka.RequireAll),
				franzContender(b, topic(b)),
				writer("kafkago-batch100-1ms", pipeline.WriterConfig{BatchSize: 100, BatchTimeout: time.Millisecond}, kafka.RequireAll),
				writer("kafkago-1ms", pipeline.WriterConfig{BatchTimeout: time.Millisecond}, kafka.RequireAll),
				writer("kafkago-50us", pipeline.WriterConfig{BatchTimeout: 50 * time.Microsecond}, kafka.RequireAll),
				writer("kafkago-acks1", pipeline.WriterConfig{}, kafka.RequireOne),
			}
			defer func() {
				for _, c := range cs {
					c.close()
				}
			}()
			ctx := context.Background()
			turn := func(c contender, from int) (time.Duration, int64, error) {
				start, cpu0 := time.Now(), cpu()
				var wg sync.WaitGroup
				errs := make(chan error, goroutines)
				for g := range goroutines {
					wg.Go(func() {
						if err := c.write(ctx, from+g*chunk); err != nil {
							errs <- err
						}
					})
				}
				wg.Wait()
				close(errs)
				return time.Since(start), cpu() - cpu0, <-errs
			}
			for _, c := range cs { // warm up: connections, metadata, the broker's JIT
				for range 5 {
					if _, _, err := turn(c, 0); err != nil {
						b.Fatal(c.name, err)
					}
				}
			}
			took := make([]time.Duration, len(cs))
			cpus := make([]int64, len(cs))
			const rounds = 10 // an op: every contender 10 turns, whatever b.N
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for r := range rounds {
					for j := range cs {
						k := (r + j) % len(cs)
						d, c, err := turn(cs[k], (i*rounds+r)*goroutines*chunk)
						if err != nil {
							b.Fatal(cs[k].name, err)
						}
						took[k] += d
						cpus[k] += c
					}
				}
			}
			msgs := float64(b.N * rounds * goroutines * chunk)
			for k, c := range cs {
				b.ReportMetric(msgs/took[k].Seconds(), c.name+"-msgs/s")
				b.ReportMetric(float64(cpus[k])/msgs, c.name+"-cpu-ns/msg")
				if k > 0 {
					b.ReportMetric(took[0].Seconds()/took[k].Seconds(), c.name+"-x-ours")
				}
			}
		})
	}
}

// cpu is this process's user and system CPU time so far, in ns.
func cpu() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
