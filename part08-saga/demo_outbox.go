package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/outbox"
)

// outboxDemo writes the article's order + outbox row in one transaction and
// reads the event back from Kafka, then measures each relay's commit → Kafka
// latency beside the article's 100–500 ms.
func outboxDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "\n== Transactional outbox: commit → Kafka through a polling relay and a CDC relay (the article: \"typically 100–500ms\") ==\n")
	if err := errors.Join(stack.Reachable(stack.Postgres, time.Second), stack.Reachable(stack.Kafka, time.Second)); err != nil {
		fmt.Fprintf(w, "left out: the outbox needs PostgreSQL and Kafka (%v); `make up` or set %s and %s\n", err, stack.EnvPostgres, stack.EnvKafka)
		return nil
	}
	pool, err := openPostgres(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := outbox.Migrate(ctx, pool, outbox.DefaultTable); err != nil {
		return err
	}
	orderID, err := outbox.CreateOrder(ctx, pool, "user-42", 18_980)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "CreateOrder: order %s and its ORDER_CREATED row in part08.outbox, one transaction\n", orderID)
	t := table(w)
	fmt.Fprintln(t, "relay\tevents\tp50\tp99\tmax\tduplicates\thow")
	for _, kind := range []string{"poll", "cdc"} {
		r, err := measureRelay(ctx, pool, kind, o.events, 100*time.Millisecond)
		if err != nil {
			return fmt.Errorf("%s relay: %w", kind, err)
		}
		how := "SELECT … FOR UPDATE SKIP LOCKED every 100 ms when idle, batch of 100, DELETE in the same transaction"
		if kind == "cdc" {
			how = "pgoutput through a replication slot, slot confirmed after Kafka's ack, 2 ms linger"
		}
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\t%s\t%d\t%s\n", kind, len(r.latencies), ms(r.pct(50)), ms(r.pct(99)), ms(r.pct(100)), r.duplicates, how)
	}
	t.Flush()
	fmt.Fprintln(w, "latency = from the writer's COMMIT returning to a consumer reading the event; events written one per transaction, 1 ms apart.")
	return nil
}

// relayRun is what measureRelay saw.
type relayRun struct {
	latencies  []time.Duration // sorted
	duplicates int
}

func (r relayRun) pct(p int) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := (len(r.latencies)*p + 99) / 100
	return r.latencies[min(max(i-1, 0), len(r.latencies)-1)]
}

// measureRelay runs a relay of kind on a private outbox table and topic,
// writes n events one per transaction, and returns each event's commit →
// consumer latency.
func measureRelay(ctx context.Context, pool *pgxpool.Pool, kind string, n int, interval time.Duration) (relayRun, error) {
	n = max(n/10, 1) * 10 // ten aggregates, the same count each
	tag := strings.ToLower(rand.Text()[:8])
	table, aggType, slot := "outbox_m"+tag, "m"+tag, "part08_m"+tag
	if err := outbox.Migrate(ctx, pool, table); err != nil {
		return relayRun{}, err
	}
	defer pool.Exec(context.Background(), "DROP TABLE IF EXISTS part08."+table) //nolint:errcheck // best effort
	topics := &outbox.Topics{Brokers: stack.KafkaBrokers(), Partitions: 3}
	if err := topics.Ensure(ctx, outbox.Topic(aggType), outbox.DefaultDeadLetterTopic); err != nil {
		return relayRun{}, err
	}
	wr := outbox.NewWriter(stack.KafkaBrokers())
	defer outbox.CloseWriter(wr) //nolint:errcheck // best effort
	router := outbox.Router{Known: map[string]bool{aggType: true}}
	var relay interface{ Run(context.Context) error }
	if kind == "poll" {
		relay = &outbox.Poller{Pool: pool, Table: table, Publisher: wr, Router: router, Topics: topics, Interval: interval}
	} else {
		if err := outbox.Setup(ctx, pool, table, slot, slot+"_pub"); err != nil {
			return relayRun{}, err
		}
		defer outbox.Teardown(context.Background(), pool, slot, slot+"_pub") //nolint:errcheck // best effort
		relay = &outbox.CDC{DSN: stack.DatabaseURL(), Slot: slot, Publication: slot + "_pub", Publisher: wr, Router: router, Topics: topics}
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	relayErr := make(chan error, 1)
	go func() { relayErr <- relay.Run(rctx) }()

	var mu sync.Mutex
	committed, received := map[string]time.Time{}, map[string]time.Time{}
	dups := 0
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		consumed <- outbox.Consume(cctx, stack.KafkaBrokers(), outbox.Topic(aggType), func(m kafka.Message) bool {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			d, err := outbox.Decode(m)
			if err != nil {
				return true
			}
			if _, ok := received[d.ID]; ok {
				dups++
			} else {
				received[d.ID] = now
			}
			return len(received) < n+1 // the warm-up event and n measured ones
		})
	}()
	// Warm up: one event through relay and consumer before the clock starts,
	// so the replication connection's start is not counted as latency.
	warm := outbox.Load{Table: table, AggregateType: aggType, Aggregates: 1, PerAggregate: 1, PerTx: 1}
	if _, err := warm.Run(ctx, pool); err != nil {
		return relayRun{}, err
	}
	for {
		mu.Lock()
		got := len(received)
		mu.Unlock()
		if got > 0 {
			break
		}
		select {
		case err := <-relayErr:
			return relayRun{}, fmt.Errorf("the relay stopped: %v", err)
		case err := <-consumed:
			return relayRun{}, fmt.Errorf("consume: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	load := outbox.Load{Table: table, AggregateType: aggType, Aggregates: 10, PerAggregate: n / 10, PerTx: 1, Pace: time.Millisecond,
		Committed: func(ids []string, at time.Time) {
			mu.Lock()
			for _, id := range ids {
				committed[id] = at
			}
			mu.Unlock()
		}}
	if _, err := load.Run(ctx, pool); err != nil {
		return relayRun{}, err
	}
	select {
	case err := <-consumed:
		if err != nil {
			return relayRun{}, fmt.Errorf("consume: %w", err)
		}
	case err := <-relayErr:
		return relayRun{}, fmt.Errorf("the relay stopped: %v", err)
	}
	stop()
	if err := <-relayErr; err != nil {
		return relayRun{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	var r relayRun
	for id, at := range received {
		if c, ok := committed[id]; ok {
			r.latencies = append(r.latencies, at.Sub(c))
		}
	}
	slices.Sort(r.latencies)
	r.duplicates = dups
	return r, nil
}
