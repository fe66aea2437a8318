package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/choreography"
)

// choreographyDemo runs the same three orders as events between services:
// one completes, one is rejected by inventory, one declined by payment (its
// reservation released by the inventory service reacting to the decline).
func choreographyDemo(ctx context.Context, w io.Writer, _ options) error {
	fmt.Fprintln(w, "\n== Choreography: the same order flow as events between services, no orchestrator ==")
	var bus choreography.Bus
	if err := stack.Reachable(stack.Kafka, time.Second); err != nil {
		fmt.Fprintf(w, "Kafka: not reachable (%v); the services talk over an in-process queue. `make up` or set %s to use Kafka\n", err, stack.EnvKafka)
		bus = choreography.NewMemory()
	} else {
		topic := "part08.choreography." + strings.ToLower(rand.Text()[:8])
		k, err := choreography.NewKafka(ctx, stack.KafkaBrokers(), topic)
		if err != nil {
			return err
		}
		defer k.Close() //nolint:errcheck // best effort
		fmt.Fprintf(w, "bus: Kafka topic %s (3 partitions, key = order id)\n", topic)
		bus = k
	}
	s := choreography.NewState()
	var mu sync.Mutex
	traces := map[string][]choreography.Event{}
	settled := make(chan struct{}, 16)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- choreography.Run(rctx, bus, s, func(e choreography.Event) {
			mu.Lock()
			traces[e.OrderID] = append(traces[e.OrderID], e)
			mu.Unlock()
			if e.Type == choreography.OrderConfirmed || e.Type == choreography.OrderCancelled {
				settled <- struct{}{}
			}
		})
	}()
	orders := []struct{ id, reject, what string }{{"c-1", "", "completes"}, {"c-2", "inventory", "inventory rejects"}, {"c-3", "payment", "payment declines"}}
	start := time.Now()
	for _, o := range orders {
		if err := bus.Publish(ctx, choreography.Created(o.id, 18_980, o.reject)); err != nil {
			return err
		}
	}
	for range orders {
		select {
		case <-settled:
		case err := <-done:
			return fmt.Errorf("bus stopped: %v", err)
		case <-time.After(time.Minute):
			return fmt.Errorf("orders did not settle within a minute")
		}
	}
	stop()
	if err := <-done; err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, o := range orders {
		st, res, charges := s.Order(o.id)
		fmt.Fprintf(w, "\norder %s (%s): %s, reservation %q, charges %d\n", o.id, o.what, st, res, charges)
		t := table(w)
		for _, e := range traces[o.id] {
			fmt.Fprintf(t, "  +%s\t%s\tfrom %s\n", ms(e.At.Sub(start)), e.Type, e.By)
			total++
		}
		t.Flush()
	}
	fmt.Fprintf(w, "\n%d events for %d orders; no service knows the whole flow: the failure path is the inventory service reacting to PaymentDeclined.\n", total, len(orders))
	return nil
}
