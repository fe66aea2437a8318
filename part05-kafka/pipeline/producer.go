package pipeline

import (
	"errors"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// WriterConfig are the producer settings the chapter changes from
// kafka-go's Writer defaults, each for a reason:
//
//	setting        kafka-go default   here            why
//	RequiredAcks   RequireNone (0)    RequireAll (-1) an acknowledged message is in the log of every in-sync replica (in its page cache: Kafka does not fsync
//	                                                  each write; it survives a broker process's crash, and a machine's only through replicas); with 0 nothing is
//	                                                  acknowledged, a lost message is never reported. On the stack's single broker, all = the leader alone
//	Balancer       RoundRobin         Hash on the key all events of one order go to one partition, so they stay in order
//	BatchSize      100                1000            kafka-go sends one produce request per partition batch, one batch of a partition after
//	                                                  another: a call of 1,000 messages over 4 partitions took 3 requests a partition with
//	                                                  100, 1 with 1000; and a call's failed messages can be written again in order only if
//	                                                  each partition's share of the call was one batch (Reordered)
//	BatchTimeout   1 s                250 µs          a partition's batch with fewer than BatchSize messages waits this long for more
//	                                                  (every call's last batch, and every batch of a small call): with 1 s a one-message
//	                                                  write takes a second; 250 µs lets concurrent callers' messages share a batch
//
// BenchmarkProducePaired (bench/part05) measures what each costs.
type WriterConfig struct {
	Brokers      []string
	Topic        string
	BatchSize    int           // 0: 1000
	BatchTimeout time.Duration // 0: 250 µs
	Balancer     kafka.Balancer
	MaxAttempts  int // per batch, with kafka-go's backoff between; 0: kafka-go's 10
}

// NewWriter returns a synchronous writer: WriteMessages returns once every
// message was acknowledged by all in-sync replicas or has failed, and a
// partial failure is a kafka.WriteErrors naming which messages failed.
// Close it to flush and release its connections.
func NewWriter(cfg WriterConfig) *kafka.Writer {
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.Topic,
		Balancer:     cfg.Balancer,
		RequiredAcks: kafka.RequireAll,
		BatchSize:    cfg.BatchSize,
		BatchTimeout: cfg.BatchTimeout,
		MaxAttempts:  cfg.MaxAttempts,
		Transport:    &kafka.Transport{Dial: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
	}
	if w.Balancer == nil {
		w.Balancer = &kafka.Hash{}
	}
	if w.BatchSize == 0 {
		w.BatchSize = 1000
	}
	if w.BatchTimeout == 0 {
		w.BatchTimeout = 250 * time.Microsecond
	}
	return w
}

// Unacked returns which of n messages written in one WriteMessages call
// failed (their indexes), given the call's error: none for nil, the ones
// kafka.WriteErrors names, or all of them for any other error (the call
// failed before any message could be told apart, or its context ended while
// kafka-go still held them: they may be written yet, and writing them again
// may store them twice). Writing them again keeps each key's order only if
// the call held at most BatchSize messages; see Reordered.
func Unacked(n int, err error) []int {
	if err == nil {
		return nil
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) && len(we) == n {
		var out []int
		for i, e := range we {
			if e != nil {
				out = append(out, i)
			}
		}
		return out
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// Reordered returns which messages of one WriteMessages call were
// acknowledged although an earlier message of the call with the same key
// was not (their indexes): the log already holds them ahead of it, and
// writing the failed one again puts it behind them. kafka-go sends a
// partition's messages in batches of BatchSize messages (and at most
// BatchBytes, 1 MiB), one after another, and goes on after a batch fails,
// so this happens when a call has more than a batch for one partition. A
// call of at most BatchSize messages and BatchBytes bytes is one batch per
// partition, acknowledged or failed whole:
// writing its failures again before the next call keeps every key in order
// (TestRetryingFailedMessagesKeepsOrderOnlyWithinOneBatch). Keyless
// messages have no order to keep; an error that is not a kafka.WriteErrors
// tells no messages apart, and nothing is returned for it.
func Reordered(msgs []kafka.Message, err error) []int {
	var we kafka.WriteErrors
	if err == nil || !errors.As(err, &we) || len(we) != len(msgs) {
		return nil
	}
	failed := map[string]bool{}
	var out []int
	for i, m := range msgs {
		switch {
		case len(m.Key) == 0:
		case we[i] != nil:
			failed[string(m.Key)] = true
		case failed[string(m.Key)]:
			out = append(out, i)
		}
	}
	return out
}
