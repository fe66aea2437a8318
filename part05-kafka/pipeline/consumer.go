package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
)

// Dead-letter headers: why a message was given up on, and where it came
// from, so it can be inspected, fixed and replayed.
const (
	HeaderReason    = "dlt-reason"    // "permanent" or "attempts"
	HeaderError     = "dlt-error"     // the last error
	HeaderAttempts  = "dlt-attempts"  // how many times it was tried
	HeaderTopic     = "dlt-topic"     // where it came from
	HeaderPartition = "dlt-partition" //
	HeaderOffset    = "dlt-offset"    //
	HeaderGroup     = "dlt-group"     // the consumer group that gave up
)

// DeadLetterTopic is the dead-letter topic of topic.
func DeadLetterTopic(topic string) string { return topic + ".dlt" }

// Consumer is a consumer group member that applies a topic's messages to
// PostgreSQL exactly once. Each assigned partition runs in its own goroutine
// (kafka-go's ConsumerGroup with a partition reader each): messages of a
// partition are applied in offset order, partitions in parallel. A partition
// starts at the offset stored in PostgreSQL if there is one (the group's
// committed offset otherwise), and its loop is FetchMessage → apply (one
// transaction for the batch and its offset) → commit the offset to the group
// too, which keeps the group's lag honest for monitoring.
type Consumer struct {
	Brokers []string
	Group   string
	Topic   string
	Store   *exactlyonce.Store
	Handler exactlyonce.Handler

	MaxBatch    int           // messages per transaction; 0: 500
	Linger      time.Duration // how long a batch waits for more messages once it has one; 0: 2 ms
	MaxAttempts int           // tries of a failing message before it goes to the dead-letter topic; 0: 5
	Backoff     time.Duration // the wait after a failed try, doubling; 0: 50 ms

	// SessionTimeout is how long the group waits for a silent member before
	// it hands its partitions to others; RebalanceTimeout how long a
	// rebalance waits for members to rejoin. 0: 10 s each (the broker allows
	// 6 s to 30 min for the session).
	SessionTimeout, RebalanceTimeout time.Duration
	Log                              *slog.Logger // nil: discard

	// AfterApply, if set, is called after each committed transaction and
	// before the offset commit to Kafka (the fault tests crash there).
	AfterApply func(partition int, res exactlyonce.Result)

	stats  Stats
	mu     sync.Mutex
	lags   map[int]*kafka.Reader
	lat    []time.Duration // end-to-end latencies of applied messages
	dlt    *kafka.Writer
	commit sync.Mutex // Generation.CommitOffsets shares one connection
}

// Stats are a consumer's counters.
type Stats struct {
	Applied, Skipped, Dead, Batches, Retries, Generations atomic.Int64
}

// Run consumes until ctx ends, then leaves the group and returns nil; it
// returns an error only for a configuration it cannot run with. A Consumer
// runs once.
func (c *Consumer) Run(ctx context.Context) error {
	if c.Store == nil || c.Handler == nil || c.Group == "" || c.Topic == "" || len(c.Brokers) == 0 {
		return errors.New("pipeline: Consumer needs Brokers, Group, Topic, Store and Handler")
	}
	c.setDefaults()
	dialer := &kafka.Dialer{Timeout: 5 * time.Second, DualStack: true}
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: c.Group, Brokers: c.Brokers, Topics: []string{c.Topic}, Dialer: dialer,
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second, SessionTimeout: c.SessionTimeout, RebalanceTimeout: c.RebalanceTimeout,
		JoinGroupBackoff: time.Second, Timeout: 5 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { c.Log.Debug("kafka group: " + fmt.Sprintf(f, a...)) }),
	})
	if err != nil {
		return err
	}
	c.dlt = NewWriter(WriterConfig{Brokers: c.Brokers, Topic: DeadLetterTopic(c.Topic), BatchSize: 1, MaxAttempts: 3})
	var running sync.WaitGroup
	defer func() {
		_ = g.Close()  // ends the generation and waits for its partition goroutines
		running.Wait() // and those of a generation that ended before they started, which it does not
		_ = c.dlt.Close()
		c.dlt.Transport.(*kafka.Transport).CloseIdleConnections()
	}()
	for {
		gen, err := g.Next(ctx)
		switch {
		case ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed):
			return nil
		case err != nil: // the group retries by itself (broker down, rebalance)
			c.Log.Debug("consumer group", "err", err)
			continue
		}
		c.stats.Generations.Add(1)
		stored, err := c.storedOffsets(ctx)
		if err != nil {
			return nil // ctx ended
		}
		for _, a := range gen.Assignments[c.Topic] {
			start := a.Offset
			if off, ok := stored[a.ID]; ok {
				start = off // PostgreSQL, not the group, knows what was applied
			}
			running.Add(1)
			gen.Start(func(gctx context.Context) {
				defer running.Done()
				if gctx.Err() == nil { // the generation may have ended while the offsets were read
					c.partition(ctx, gctx, gen, a.ID, start)
				}
			})
		}
	}
}

func (c *Consumer) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.Linger <= 0 {
		c.Linger = 2 * time.Millisecond
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = 50 * time.Millisecond
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	c.lags = map[int]*kafka.Reader{}
}

// storedOffsets reads the offsets PostgreSQL holds, retrying while it is
// unreachable, until ctx ends.
func (c *Consumer) storedOffsets(ctx context.Context) (map[int]int64, error) {
	for {
		off, err := c.Store.Offsets(ctx, c.Topic)
		if err == nil {
			return off, nil
		}
		c.Log.Warn("read stored offsets", "err", err)
		if !sleep(ctx, c.Backoff) {
			return nil, ctx.Err()
		}
	}
}

// partition applies one partition until the generation or ctx ends.
func (c *Consumer) partition(ctx, gctx context.Context, gen *kafka.Generation, p int, start int64) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(gctx, cancel)
	defer stop()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: c.Brokers, Topic: c.Topic, Partition: p, Dialer: &kafka.Dialer{Timeout: 5 * time.Second},
		MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 250 * time.Millisecond,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { c.Log.Debug("kafka reader: " + fmt.Sprintf(f, a...)) }),
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		c.Log.Error("set offset", "partition", p, "offset", start, "err", err)
		return
	}
	c.mu.Lock()
	c.lags[p] = r
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.lags[p] == r {
			delete(c.lags, p)
		}
		c.mu.Unlock()
	}()

	attempts := map[int64]int{}
	dead := map[int64]string{}
	for {
		batch, err := c.fetch(ctx, r)
		if err != nil {
			return // ctx or the generation ended
		}
		var res exactlyonce.Result
		for tries := 1; ; tries++ {
			res, err = c.Store.Apply(ctx, c.Topic, p, batch, c.Handler, dead)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return // not applied; the next owner reads it again
			}
			c.stats.Retries.Add(1)
			var me *exactlyonce.MessageError
			if errors.As(err, &me) {
				attempts[me.Message.Offset]++
				if n := attempts[me.Message.Offset]; me.Permanent || n >= c.MaxAttempts {
					if c.deadLetter(ctx, me, n) {
						dead[me.Message.Offset] = reason(me)
						continue // apply again, recording it as dead
					}
				} else {
					c.Log.Warn("apply", "err", err, "attempt", n)
				}
			} else {
				c.Log.Warn("apply", "partition", p, "err", err) // PostgreSQL down, a serialization failure: retry the batch
			}
			if !sleep(ctx, c.Backoff<<min(tries-1, 5)) {
				return
			}
		}
		c.record(batch[res.Skipped:], res) // the skipped ones lead the batch (offset order)
		clear(attempts)
		clear(dead)
		if c.AfterApply != nil {
			c.AfterApply(p, res)
		}
		c.commit.Lock()
		err = gen.CommitOffsets(map[string]map[int]int64{c.Topic: {p: res.Next}})
		c.commit.Unlock()
		if err != nil {
			c.Log.Debug("commit to the group (PostgreSQL already has it)", "partition", p, "err", err)
		}
	}
}

// fetch waits for one message, then takes what else arrives within Linger,
// up to MaxBatch.
func (c *Consumer) fetch(ctx context.Context, r *kafka.Reader) ([]kafka.Message, error) {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := []kafka.Message{m}
	lctx, cancel := context.WithTimeout(ctx, c.Linger)
	defer cancel()
	for len(batch) < c.MaxBatch {
		m, err := r.FetchMessage(lctx)
		if err != nil {
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// deadLetter writes me's message to the dead-letter topic, with why and
// where from in its headers; false if that failed (it is tried again).
func (c *Consumer) deadLetter(ctx context.Context, me *exactlyonce.MessageError, attempts int) bool {
	m := me.Message
	h := []kafka.Header{
		{Key: HeaderReason, Value: []byte(reason(me))},
		{Key: HeaderError, Value: []byte(me.Err.Error())},
		{Key: HeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
		{Key: HeaderTopic, Value: []byte(m.Topic)},
		{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
		{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		{Key: HeaderGroup, Value: []byte(c.Group)},
	}
	err := c.dlt.WriteMessages(ctx, kafka.Message{Key: m.Key, Value: m.Value, Headers: append(slices.Clone(m.Headers), h...)})
	if err != nil {
		c.Log.Warn("dead-letter write failed; will retry", "offset", m.Offset, "err", err)
		return false
	}
	c.Log.Info("dead-lettered", "partition", m.Partition, "offset", m.Offset, "reason", reason(me), "err", me.Err)
	return true
}

func reason(me *exactlyonce.MessageError) string {
	if me.Permanent {
		return "permanent"
	}
	return "attempts"
}

// record counts a committed transaction and the end-to-end latency of the
// messages it applied or dead-lettered.
func (c *Consumer) record(batch []kafka.Message, res exactlyonce.Result) {
	c.stats.Batches.Add(1)
	c.stats.Applied.Add(int64(res.Applied))
	c.stats.Skipped.Add(int64(res.Skipped))
	c.stats.Dead.Add(int64(res.Dead))
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range batch {
		if !m.Time.IsZero() && len(c.lat) < 1<<20 {
			c.lat = append(c.lat, now.Sub(m.Time))
		}
	}
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() *Stats { return &c.stats }

// Latencies returns the end-to-end latencies (the message's timestamp to its
// transaction's commit) recorded so far.
func (c *Consumer) Latencies() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lat)
}

// Lag is the sum over the partitions this member holds of the messages
// written but not yet fetched, as of each partition's last fetch.
func (c *Consumer) Lag() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lag int64
	for _, r := range c.lags {
		lag += r.Lag()
	}
	return lag
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
