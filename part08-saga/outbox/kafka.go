package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

// Publisher writes messages and returns once the broker confirmed them all:
// *kafka.Writer with RequiredAcks set is one.
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// NewWriter is the relays' Kafka writer: every message confirmed by all
// in-sync replicas, partitioned by key (an aggregate's events stay on one
// partition, in order), batches flushed after 1 ms rather than kafka-go's
// default second.
func NewWriter(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		BatchSize:    1000,
		MaxAttempts:  10,
		// Its own transport: kafka-go's default one is shared by the whole
		// process and caches metadata for 6 s, so a topic created meanwhile
		// is "unknown" to every writer.
		Transport: &kafka.Transport{MetadataTTL: time.Second},
	}
}

// CloseWriter closes a writer from NewWriter and its transport's connections.
func CloseWriter(w *kafka.Writer) error {
	err := w.Close()
	if t, ok := w.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}

// Write writes msgs, retrying what Kafka calls temporary (a leader moving, a
// topic not yet known to every broker) with backoff until ctx ends: a relay
// waits out a broker's trouble rather than exit. A retry after a partial
// write publishes some messages twice, which at-least-once allows.
func Write(ctx context.Context, pub Publisher, msgs ...kafka.Message) error {
	wait := 20 * time.Millisecond
	for {
		err := pub.WriteMessages(ctx, msgs...)
		if err == nil || !temporary(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func temporary(err error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && !temporary(e) {
				return false
			}
		}
		return true
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	return isTimeout(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Topics creates Kafka topics on first use (the stack's broker has
// auto-creation off, as production brokers should).
type Topics struct {
	Brokers    []string
	Partitions int

	mu   sync.Mutex
	made map[string]bool
}

// Ensure creates the topics that do not exist yet.
func (t *Topics) Ensure(ctx context.Context, topics ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.made == nil {
		t.made = map[string]bool{}
	}
	var todo []kafka.TopicConfig
	for _, name := range topics {
		if !t.made[name] {
			todo = append(todo, kafka.TopicConfig{Topic: name, NumPartitions: max(t.Partitions, 1), ReplicationFactor: 1})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if err := CreateTopics(ctx, t.Brokers, todo...); err != nil {
		return err
	}
	for _, c := range todo {
		t.made[c.Topic] = true
	}
	return nil
}

// CreateTopics creates topics through the cluster's controller; a topic that
// exists already is not an error.
func CreateTopics(ctx context.Context, brokers []string, topics ...kafka.TopicConfig) error {
	var d kafka.Dialer
	conn, err := d.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return err
	}
	defer conn.Close()
	ctl, err := conn.Controller()
	if err != nil {
		return err
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctl.Host, strconv.Itoa(ctl.Port)))
	if err != nil {
		return err
	}
	defer cc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = cc.SetDeadline(dl)
	}
	if err = cc.CreateTopics(topics...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return err
	}
	// The controller answers before every broker knows the topic: a write in
	// that window fails with Unknown Topic Or Partition. Wait until the
	// metadata shows each partition with a leader.
	for _, tc := range topics {
		for {
			parts, err := conn.ReadPartitions(tc.Topic)
			ready := err == nil && len(parts) >= tc.NumPartitions
			for _, p := range parts {
				ready = ready && p.Leader.ID >= 0 && p.Leader.Host != ""
			}
			if ready {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("topic %s not ready: %w", tc.Topic, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// Consume reads every partition of topic from its first offset and calls fn
// with each message (one call at a time) until fn returns false or ctx ends.
// It is the tests' and the demo's reader: a connection to each partition's
// leader, no consumer group, no commits.
func Consume(ctx context.Context, brokers []string, topic string, fn func(kafka.Message) bool) error {
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	done := false
	errs := make(chan error, len(parts))
	for _, p := range parts {
		go func() {
			errs <- readPartition(ctx, brokers[0], topic, p.ID, func(m kafka.Message) bool {
				mu.Lock()
				defer mu.Unlock()
				if done {
					return false
				}
				if !fn(m) {
					done = true
					cancel()
					return false
				}
				return true
			})
		}()
	}
	var first error
	for range parts {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if done {
		return nil
	}
	return first
}

// readPartition reads one partition from its first offset until fn returns
// false or ctx ends, reconnecting after what Kafka calls temporary (a new
// topic's leader not known everywhere yet).
func readPartition(ctx context.Context, broker, topic string, partition int, fn func(kafka.Message) bool) error {
	next := int64(kafka.FirstOffset)
	for ctx.Err() == nil {
		stop, err := readFrom(ctx, broker, topic, partition, &next, fn)
		if stop || ctx.Err() != nil {
			return nil
		}
		if !temporary(err) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// readFrom reads from *next on one connection, advancing *next; it reports
// whether fn asked to stop.
func readFrom(ctx context.Context, broker, topic string, partition int, next *int64, fn func(kafka.Message) bool) (bool, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if *next == kafka.FirstOffset {
		_, err = conn.Seek(0, kafka.SeekStart)
	} else {
		_, err = conn.Seek(*next, kafka.SeekAbsolute)
	}
	if err != nil {
		return false, err
	}
	for ctx.Err() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			*next = m.Offset + 1
			if !fn(m) {
				_ = batch.Close()
				return true, nil
			}
		}
		if err := batch.Close(); err != nil && !isTimeout(err) {
			return false, err
		}
	}
	return false, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
