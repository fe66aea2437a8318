package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/saga"
)

// workerCmd runs a saga worker on the stack's Temporal until ctx ends.
func workerCmd(ctx context.Context, w io.Writer, o options) error {
	st, where, closeStore, err := openStore(ctx, w, o.store)
	if err != nil {
		return err
	}
	defer closeStore()
	c, err := dialTemporal(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	wk := newWorker(c, o.taskQueue, &saga.Activities{Store: st})
	if err := wk.Start(); err != nil {
		return err
	}
	fmt.Fprintf(w, "worker: task queue %s on Temporal at %s; state: %s; Ctrl-C stops\n", o.taskQueue, stack.TemporalAddress(), where)
	<-ctx.Done()
	wk.Stop()
	fmt.Fprintln(w, "stopped")
	return nil
}

// startCmd starts one saga on the stack's Temporal, waits for its end and
// prints its journal (from PostgreSQL, where a worker with -store postgres
// keeps it).
func startCmd(ctx context.Context, w io.Writer, o options) error {
	c, err := dialTemporal(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.order == "" {
		o.order = "o-" + strings.ToLower(rand.Text()[:10])
	}
	in := saga.OrderSagaInput{OrderID: o.order, UserID: "user-42",
		Items: []saga.OrderItem{{ProductID: "sku-espresso", Quantity: 2}}, Amount: 9_490, Currency: "USD"}
	if o.fail != "none" {
		in.Faults = []saga.Fault{fault(o)}
	}
	st, _, closeStore, err := openStore(ctx, io.Discard, "postgres")
	if err != nil {
		st = nil
	} else {
		defer closeStore()
	}
	r := startRunner{c: c, queue: o.taskQueue}
	if st == nil {
		_, err := r.Run(ctx, in)
		if err != nil {
			fmt.Fprintf(w, "saga %s failed: %s (PostgreSQL not reachable: no journal to show)\n", in.OrderID, strings.Join(errorTypes(err), " caused by "))
			return nil
		}
		fmt.Fprintf(w, "saga %s completed (PostgreSQL not reachable: no journal to show)\n", in.OrderID)
		return nil
	}
	return runOne(ctx, w, r, st, in)
}

// startRunner starts sagas for a worker elsewhere.
type startRunner struct {
	c     client.Client
	queue string
}

func (r startRunner) Run(ctx context.Context, in saga.OrderSagaInput) (saga.Result, error) {
	return startSaga(ctx, r.c, r.queue, in)
}

func (startRunner) Close() {}
