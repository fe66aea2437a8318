package choreography

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/sysdesign-masterclass/golang/part08-saga/outbox"
)

// Kafka is a Bus on one Kafka topic, partitioned by order id, so an order's
// events keep their order. Run reads every partition from the start (the
// demo's and the tests' topics are fresh); a production service would read
// the topics it needs in its own consumer group.
type Kafka struct {
	Brokers []string
	Topic   string
	writer  *kafka.Writer
}

// NewKafka returns a bus on topic (created with 3 partitions if missing).
func NewKafka(ctx context.Context, brokers []string, topic string) (*Kafka, error) {
	if err := outbox.CreateTopics(ctx, brokers, kafka.TopicConfig{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}); err != nil {
		return nil, err
	}
	return &Kafka{Brokers: brokers, Topic: topic, writer: outbox.NewWriter(brokers)}, nil
}

// Publish implements Bus: it returns once Kafka acknowledged the event.
func (k *Kafka) Publish(ctx context.Context, e Event) error {
	return outbox.Write(ctx, k.writer, kafka.Message{Topic: k.Topic, Key: []byte(e.OrderID), Value: e.Marshal()})
}

// Run implements Bus.
func (k *Kafka) Run(ctx context.Context, handle func(Event)) error {
	err := outbox.Consume(ctx, k.Brokers, k.Topic, func(m kafka.Message) bool {
		if e, err := Unmarshal(m.Value); err == nil {
			handle(e)
		}
		return true
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Close closes the writer.
func (k *Kafka) Close() error { return outbox.CloseWriter(k.writer) }
