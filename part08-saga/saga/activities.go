package saga

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// Activities are the saga's activities, each idempotent on the order id through
// its Store: a retry (after a timeout, or a worker that died between the commit
// and the report) changes nothing the first attempt already changed.
type Activities struct {
	Store Store
	// Failed, if set, is called when a step or a compensation fails (metrics;
	// the benchmarks time a failure to its last compensation with it).
	Failed func(in OrderSagaInput, step string, undo bool, err error)
}

// CreateOrder writes the order (pending).
func (a *Activities) CreateOrder(ctx context.Context, in OrderSagaInput) error {
	return a.step(ctx, in, StepCreateOrder, false, func() error { return a.Store.CreateOrder(ctx, in) })
}

// CancelOrder compensates CreateOrder.
func (a *Activities) CancelOrder(ctx context.Context, in OrderSagaInput) error {
	return a.step(ctx, in, StepCreateOrder, true, func() error { return a.Store.CancelOrder(ctx, in.OrderID) })
}

// ReserveInventory holds the order's items and returns the reservation's id.
func (a *Activities) ReserveInventory(ctx context.Context, in OrderSagaInput) (string, error) {
	var id string
	err := a.step(ctx, in, StepReserveInventory, false, func() (err error) {
		id, err = a.Store.Reserve(ctx, in.OrderID, in.Items)
		return err
	})
	return id, err
}

// ReleaseInventory compensates ReserveInventory.
func (a *Activities) ReleaseInventory(ctx context.Context, in OrderSagaInput) error {
	return a.step(ctx, in, StepReserveInventory, true, func() error { return a.Store.Release(ctx, in.OrderID) })
}

// ProcessPayment charges the order's amount once and returns the transaction's id.
func (a *Activities) ProcessPayment(ctx context.Context, in OrderSagaInput) (string, error) {
	var id string
	err := a.step(ctx, in, StepProcessPayment, false, func() (err error) {
		id, err = a.Store.Charge(ctx, in.OrderID, in.Amount, in.Currency)
		return err
	})
	return id, err
}

// RefundPayment compensates ProcessPayment.
func (a *Activities) RefundPayment(ctx context.Context, in OrderSagaInput) error {
	return a.step(ctx, in, StepProcessPayment, true, func() error { return a.Store.Refund(ctx, in.OrderID) })
}

// NotifyFulfillment confirms the order to fulfillment, the saga's last step
// (it has no compensation: nothing comes after it that could fail).
func (a *Activities) NotifyFulfillment(ctx context.Context, in OrderSagaInput) error {
	return a.step(ctx, in, StepNotifyFulfillment, false, func() error { return a.Store.Confirm(ctx, in.OrderID) })
}

// step runs the store call between the faults injected before and after it.
func (a *Activities) step(ctx context.Context, in OrderSagaInput, step string, undo bool, call func() error) (err error) {
	if a.Failed != nil {
		defer func() {
			if err != nil {
				a.Failed(in, step, undo, err)
			}
		}()
	}
	attempt := activity.GetInfo(ctx).Attempt
	if err := inject(in.Faults, step, undo, false, attempt); err != nil {
		return err
	}
	if err := call(); err != nil {
		return fmt.Errorf("%s: %w", step, err) // a store error is transient: retried
	}
	return inject(in.Faults, step, undo, true, attempt)
}

// FaultKind is what an injected fault does.
type FaultKind string

// The kinds of fault.
const (
	// Reject fails the step with its business error (non-retryable), having
	// changed nothing.
	Reject FaultKind = "reject"
	// Transient fails the first Times attempts with a retryable error.
	Transient FaultKind = "transient"
)

// Fault makes one step (or its compensation, with Undo) fail.
type Fault struct {
	Step  string
	Undo  bool // fail the step's compensation instead of the step
	Kind  FaultKind
	Times int  // Transient: the attempts that fail (attempt Times+1 succeeds)
	After bool // Transient: fail after the store call committed (the outcome a crash leaves unknown)
}

// BusinessError returns the business error type that a rejection of step fails with.
func BusinessError(step string) string {
	switch step {
	case StepCreateOrder:
		return ErrOrderRejected
	case StepReserveInventory:
		return ErrInventoryPermanentlyUnavailable
	case StepProcessPayment:
		return ErrPaymentDeclined
	}
	return ErrFulfillmentRejected
}

func inject(faults []Fault, step string, undo, after bool, attempt int32) error {
	for _, f := range faults {
		if f.Step != step || f.Undo != undo {
			continue
		}
		switch {
		case f.Kind == Reject && !after && !undo:
			return temporal.NewApplicationError(step+": rejected (injected)", BusinessError(step))
		case f.Kind == Transient && f.After == after && int(attempt) <= f.Times:
			return temporal.NewApplicationError(fmt.Sprintf("%s: transient failure, attempt %d (injected)", what(step, undo), attempt), "TRANSIENT")
		}
	}
	return nil
}

func what(step string, undo bool) string {
	if undo {
		return "compensate " + step
	}
	return step
}
