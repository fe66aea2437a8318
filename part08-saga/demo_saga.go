package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/sysdesign-masterclass/golang/part08-saga/saga"
)

// sagaDemo runs a saga that completes and one whose -fail step fails, and
// prints what each step and compensation changed, with its time.
func sagaDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== The order saga: a happy path, then %s failing (%s) ==\n", o.fail, faultText(o))
	st, where, closeStore, err := openStore(ctx, w, o.store)
	if err != nil {
		return err
	}
	defer closeStore()
	r, engine, err := openRunner(ctx, w, o.engine, &saga.Activities{Store: st})
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintf(w, "engine: %s\nstate: %s\n", engine, where)
	batch := "o-" + strings.ToLower(rand.Text()[:10])
	for i, faults := range [][]saga.Fault{nil, {fault(o)}} {
		in := saga.OrderSagaInput{OrderID: fmt.Sprintf("%s-%d", batch, i+1), UserID: "user-42",
			Items:  []saga.OrderItem{{ProductID: "sku-espresso", Quantity: 2}, {ProductID: "sku-grinder", Quantity: 1}},
			Amount: 18_980, Currency: "USD", Faults: faults}
		if err := runOne(ctx, w, r, st, in); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "compensations run newest first, each after the one before has finished; a step rejected with a business error changed nothing and has nothing to undo.")
	return nil
}

func faultText(o options) string {
	if o.fault == "transient" {
		return "a transient error 5 times: the article's MaximumAttempts 5 runs out"
	}
	return saga.BusinessError(o.fail) + ", a business error: not retried"
}

func fault(o options) saga.Fault {
	if o.fault == "transient" {
		return saga.Fault{Step: o.fail, Kind: saga.Transient, Times: 5}
	}
	return saga.Fault{Step: o.fail, Kind: saga.Reject}
}

// runOne runs one saga and prints its journal.
func runOne(ctx context.Context, w io.Writer, r runner, st saga.Store, in saga.OrderSagaInput) error {
	start := time.Now()
	res, err := r.Run(ctx, in)
	took := time.Since(start)
	var app *temporal.ApplicationError
	switch {
	case err == nil:
		fmt.Fprintf(w, "\nsaga %s (%d items, %s): completed in %s; reservation %s, transaction %s\n",
			in.OrderID, len(in.Items), money(in.Amount, in.Currency), ms(took), res.ReservationID, res.TransactionID)
	case errors.As(err, &app):
		fmt.Fprintf(w, "\nsaga %s (%d items, %s): failed in %s: %s\n",
			in.OrderID, len(in.Items), money(in.Amount, in.Currency), ms(took), strings.Join(errorTypes(err), " caused by "))
	default:
		return fmt.Errorf("saga %s: %w", in.OrderID, err)
	}
	j, err := st.Journal(ctx, in.OrderID)
	if err != nil {
		return err
	}
	t := table(w)
	fmt.Fprintln(t, "  at\tstep\tchange")
	var lastDo, lastUndo time.Time
	for _, e := range j {
		step := e.Step
		if e.Undo {
			step = "compensate " + step
			lastUndo = e.At
		} else {
			lastDo = e.At
		}
		fmt.Fprintf(t, "  +%s\t%s\t%s\n", ms(e.At.Sub(start)), step, e.Note)
	}
	t.Flush()
	if !lastUndo.IsZero() {
		fmt.Fprintf(w, "  last forward change → last compensation: %s\n", ms(lastUndo.Sub(lastDo)))
	}
	return nil
}

// money prints minor units: 18980 USD → 189.80 USD.
func money(minor int64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, currency)
}
