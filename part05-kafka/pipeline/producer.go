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
//	RequiredAcks   RequireNone (0)    RequireAll (-1) an acknowledged message is on every in-sync replica; with 0 nothing is acknowledged, a lost message is never reported
//	Balancer       RoundRobin         Hash on the key all events of one order go to one partition, so they stay in order
//	BatchTimeout   1 s                1 ms            a partition's batch with fewer than BatchSize messages waits this long for more; with 1 s a one-message write takes a second
//
// BatchSize stays kafka-go's 100: a WriteMessages call's messages fill
// batches of 100 per partition, which go out at once, and only each
// partition's remainder waits BatchTimeout.
// The bench/part05 benchmarks measure what each costs.
type WriterConfig struct {
	Brokers      []string
	Topic        string
	BatchSize    int           // 0: kafka-go's 100
	BatchTimeout time.Duration // 0: 1 ms
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
	if w.BatchTimeout == 0 {
		w.BatchTimeout = time.Millisecond
	}
	return w
}

// Unacked returns which of n messages written in one WriteMessages call
// failed (their indexes), given the call's error: none for nil, the ones
// kafka.WriteErrors names, or all of them for any other error (the call
// failed before any message could be told apart).
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
