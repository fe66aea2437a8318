package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
	"github.com/sysdesign-masterclass/golang/part05-kafka/orders"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pipeline"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pool"
)

// pipelineDemo runs the order pipeline on the stack's Kafka and PostgreSQL
// when both answer, else in process.
func pipelineDemo(ctx context.Context, w io.Writer, o options) error {
	if o.stack == "auto" {
		kerr := pipeline.Reachable(stack.KafkaBrokers(), 2*time.Second)
		perr := stack.Reachable(stack.Postgres, 2*time.Second)
		if kerr == nil && perr == nil {
			return kafkaPipeline(ctx, w, o)
		}
		var why []string
		for _, err := range []error{kerr, perr} {
			if err != nil {
				why = append(why, err.Error())
			}
		}
		fmt.Fprintf(w, "Kafka or PostgreSQL is not running (%s): the pipeline runs in process; `make up SERVICES=\"kafka postgres\"` or set KAFKA_BROKERS and DATABASE_URL for the real one\n",
			strings.Join(why, "; "))
	}
	return memoryPipeline(ctx, w, o)
}

// event makes the i-th of n events over the orders: each order's events in
// sequence, interleaved across orders.
func events(prefix string, o options) []orders.Event {
	seq := make([]int, o.orders)
	out := make([]orders.Event, o.messages)
	for i := range out {
		ord := i % o.orders
		seq[ord]++
		out[i] = orders.Event{ID: fmt.Sprintf("%s-%d-%d", prefix, ord, seq[ord]), OrderID: fmt.Sprintf("%s-%d", prefix, ord),
			Seq: seq[ord], Type: orders.Types[min(seq[ord]-1, len(orders.Types)-1)], Amount: int64(100 + ord)}
	}
	return out
}

// memoryPipeline: a partitioned in-memory log stands in for the broker; a
// fetch loop per partition feeds pool.Ordered (lanes by order ID), which
// blocks the loop when its buffer is full; the write checks each order's
// sequence.
func memoryPipeline(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== Pipeline in process: %s events of %d orders, %d partitions, %d lanes × buffer %d, each write 50 µs ==\n",
		thousands(int64(o.messages)), o.orders, o.partitions, o.workers, o.buffer)
	log := make([]chan orders.Event, o.partitions) // the broker: it takes a partition's share and more, as Kafka's disk does
	for i := range log {
		log[i] = make(chan orders.Event, 2*o.messages/o.partitions+16)
	}
	check := newOrderCheck()
	var mu sync.Mutex
	var lat []time.Duration
	lanes, err := pool.NewOrdered[string](ctx, o.workers, o.buffer, nil, func(_ context.Context, e orders.Event) error {
		time.Sleep(50 * time.Microsecond) // the database write
		check.apply(e.OrderID, e.Seq)
		mu.Lock()
		lat = append(lat, time.Since(e.At))
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	var produced, fetched, maxLag atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for p := range log { // the consumer: one fetch loop per partition
		wg.Go(func() {
			for e := range log[p] {
				fetched.Add(1)
				if lag := produced.Load() - fetched.Load(); lag > maxLag.Load() {
					maxLag.Store(lag)
				}
				if lanes.Submit(ctx, e.OrderID, e) != nil {
					return
				}
			}
		})
	}
	for _, e := range events("mem", o) { // the producer, keyed by order ID
		h := fnv.New32a()
		_, _ = h.Write([]byte(e.OrderID))
		e.At = time.Now()
		produced.Add(1)
		log[h.Sum32()%uint32(o.partitions)] <- e
	}
	produceTook := time.Since(start)
	for _, ch := range log {
		close(ch)
	}
	wg.Wait()
	if err := lanes.Shutdown(ctx); err != nil {
		return err
	}
	took := time.Since(start)
	s := lanes.Stats()
	tw := table(w)
	fmt.Fprintln(tw, "produced\tproduce rate\tapplied\tend-to-end rate\tp50\tp99\tmax lag\tlag at the end\tout of order\tfetch loops blocked")
	fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", produced.Load(), rate(produced.Load(), produceTook), s.Processed, rate(s.Processed, took),
		ms(percentile(lat, 50)), ms(percentile(lat, 99)), maxLag.Load(), produced.Load()-s.Processed, check.outOfOrder, ms(s.Blocked))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "the producer never waits for the consumer (the log takes everything); the consumer's fetch loops wait for the lanes: that is where backpressure stops.\n\n")
	return nil
}

// kafkaPipeline produces to a new topic on the stack's Kafka while a
// consumer group member applies every event exactly once into PostgreSQL.
func kafkaPipeline(ctx context.Context, w io.Writer, o options) error {
	brokers := stack.KafkaBrokers()
	topic := fmt.Sprintf("part05-orders-%d", time.Now().UnixNano())
	fmt.Fprintf(w, "== Pipeline on Kafka (%s) and PostgreSQL: %s events of %d orders, topic %s with %d partitions ==\n",
		brokers[0], thousands(int64(o.messages)), o.orders, topic, o.partitions)
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := pipeline.CreateTopic(setup, brokers, topic, o.partitions); err != nil {
		return err
	}
	if err := pipeline.CreateTopic(setup, brokers, pipeline.DeadLetterTopic(topic), 1); err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = pipeline.DeleteTopics(dctx, brokers, topic, pipeline.DeadLetterTopic(topic))
	}()
	db, err := pgxpool.New(ctx, stack.DatabaseURL())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := exactlyonce.Migrate(setup, db, orders.Tables...); err != nil {
		return err
	}
	group := topic + "-app"
	c := &pipeline.Consumer{Brokers: brokers, Group: group, Topic: topic, Store: exactlyonce.New(db, group), Handler: orders.Apply}
	cctx, stop := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() { consumed <- c.Run(cctx) }()
	defer func() {
		stop()
		if err := <-consumed; err != nil {
			fmt.Fprintln(w, "consumer:", err)
		}
	}()

	prefix := topic
	evs := events(prefix, o)
	wr := pipeline.NewWriter(pipeline.WriterConfig{Brokers: brokers, Topic: topic})
	start := time.Now()
	var unacked int
	for i := 0; i < len(evs); i += 1000 {
		batch := evs[i:min(i+1000, len(evs))]
		msgs := make([]kafka.Message, len(batch))
		for j := range batch {
			batch[j].At = time.Now()
			msgs[j] = batch[j].Message()
		}
		unacked += len(pipeline.Unacked(len(msgs), wr.WriteMessages(ctx, msgs...)))
	}
	produceTook := time.Since(start)
	_ = wr.Close()
	wr.Transport.(*kafka.Transport).CloseIdleConnections()

	var maxLag int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Minute)
	for c.Stats().Applied.Load()+c.Stats().Dead.Load() < int64(len(evs)-unacked) {
		maxLag = max(maxLag, c.Lag())
		select {
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("applied %d of %d events in 5 minutes", c.Stats().Applied.Load(), len(evs))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	took := time.Since(start)
	var applied, dups int64
	if err := db.QueryRow(ctx, `SELECT coalesce(sum(events), 0), coalesce(sum(out_of_order), 0) FROM `+exactlyonce.Schema+`.orders WHERE order_id LIKE $1 || '-%'`,
		prefix).Scan(&applied, &dups); err != nil {
		return err
	}
	lat := c.Latencies()
	tw := table(w)
	fmt.Fprintln(tw, "produced (acks=all)\tunacked\tproduce rate\tapplied in PostgreSQL\tend-to-end rate\tp50\tp99\tmax lag seen\tlag at the end\tout of order\ttransactions")
	fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", len(evs)-unacked, unacked, rate(int64(len(evs)), produceTook), applied,
		rate(applied, took), ms(percentile(lat, 50)), ms(percentile(lat, 99)), maxLag, c.Lag(), dups, c.Stats().Batches.Load())
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "end-to-end: from the producer's timestamp to the commit of the transaction that applied the event (and stored its offset).\n\n")
	return nil
}
