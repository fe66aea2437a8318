package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part05-kafka/pool"
)

// orderCheck records each order's last applied sequence number and counts
// events applied after a later one of their order.
type orderCheck struct {
	mu         sync.Mutex
	last       map[string]int
	outOfOrder int
	orders     map[string]bool
}

func newOrderCheck() *orderCheck {
	return &orderCheck{last: map[string]int{}, orders: map[string]bool{}}
}

func (c *orderCheck) apply(order string, seq int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq < c.last[order] {
		c.outOfOrder++
		c.orders[order] = true
		return
	}
	c.last[order] = seq
}

// orderTypes are the events of one order, in order.
var orderTypes = []string{"created", "paid", "shipped", "delivered"}

type orderEvent struct {
	order string
	seq   int
}

// orderingDemo sends every order's events, in sequence, through a plain pool
// and through Ordered's per-key lanes, with the same number of goroutines
// and a write time that varies as a database's does.
func orderingDemo(ctx context.Context, w io.Writer, o options) error {
	n := min(o.messages, 20_000)
	perOrder := len(orderTypes)
	fmt.Fprintf(w, "== Ordering: %s orders, each %d events back to back (%s), %d goroutines, each write 0–200 µs ==\n",
		thousands(int64(n/perOrder)), perOrder, strings.Join(orderTypes, ", "), o.workers)
	write := func(c *orderCheck) func(context.Context, orderEvent) error {
		return func(_ context.Context, e orderEvent) error {
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			c.apply(e.order, e.seq)
			return nil
		}
	}
	events := func(submit func(orderEvent) error) error {
		for i := range n / perOrder {
			for seq := 1; seq <= perOrder; seq++ { // a customer creates, pays, ... within moments
				if err := submit(orderEvent{fmt.Sprint("order-", i), seq}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	tw := table(w)
	fmt.Fprintln(tw, "pool\tgoroutines\tevents applied out of order\torders affected\trate")

	plain := newOrderCheck()
	p, err := pool.New(ctx, pool.Config[orderEvent]{Workers: o.workers, Buffer: o.buffer}, write(plain))
	if err != nil {
		return err
	}
	start := time.Now()
	err = events(func(e orderEvent) error { return p.Submit(ctx, e) })
	if err := cmpErr(err, p.Shutdown(ctx)); err != nil {
		return err
	}
	fmt.Fprintf(tw, "pool.Pool: any free worker\t%d\t%d\t%d\t%s\n", o.workers, plain.outOfOrder, len(plain.orders), rate(int64(n/perOrder*perOrder), time.Since(start)))

	lanes := newOrderCheck()
	op, err := pool.NewOrdered[string](ctx, o.workers, o.buffer, nil, write(lanes))
	if err != nil {
		return err
	}
	start = time.Now()
	err = events(func(e orderEvent) error { return op.Submit(ctx, e.order, e) })
	if err := cmpErr(err, op.Shutdown(ctx)); err != nil {
		return err
	}
	fmt.Fprintf(tw, "pool.Ordered: lane by order ID\t%d\t%d\t%d\t%s\n", o.workers, lanes.outOfOrder, len(lanes.orders), rate(int64(n/perOrder*perOrder), time.Since(start)))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "per-key lanes keep each order in sequence with as many goroutines as the plain pool and memory fixed at lanes × buffer.\n\n")
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
