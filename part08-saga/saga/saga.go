package saga

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The saga's steps, in the order the workflow runs them. They name the
// journal's entries and the step a Fault targets.
const (
	StepCreateOrder       = "create-order"
	StepReserveInventory  = "reserve-inventory"
	StepProcessPayment    = "process-payment"
	StepNotifyFulfillment = "notify-fulfillment"
)

// Steps lists the steps in workflow order.
var Steps = []string{StepCreateOrder, StepReserveInventory, StepProcessPayment, StepNotifyFulfillment}

// Business error types: an activity that returns one of these did nothing, and
// retrying cannot change the answer. The first two are the article's; the other
// two let a Fault reject the first and the last step the same way.
const (
	ErrPaymentDeclined                 = "PAYMENT_DECLINED"
	ErrInventoryPermanentlyUnavailable = "INVENTORY_PERMANENTLY_UNAVAILABLE"
	ErrOrderRejected                   = "ORDER_REJECTED"
	ErrFulfillmentRejected             = "FULFILLMENT_REJECTED"
)

// The workflow's own error types: a saga that failed and was undone, and one
// whose undoing failed too (only a non-retryable compensation error can do that).
const (
	ErrCompensated        = "SAGA_COMPENSATED"
	ErrCompensationFailed = "SAGA_COMPENSATION_FAILED"
)

// TaskQueue is the task queue the worker polls and the starter uses.
const TaskQueue = "part08-order-saga"

// OrderSagaInput is the workflow's input: the article's fields, with the
// amount in minor units (cents) instead of a float64, and the faults to inject.
type OrderSagaInput struct {
	OrderID  string
	UserID   string
	Items    []OrderItem
	Amount   int64 // minor units of Currency (cents): float64 cannot hold 0.10 exactly
	Currency string
	Faults   []Fault `json:",omitempty"`
}

// OrderItem is one line of the order.
type OrderItem struct {
	ProductID string
	Quantity  int
}

// Result is what a saga that completed returns.
type Result struct {
	OrderID       string
	ReservationID string
	TransactionID string
}

// ActivityOptions are the article's options for the forward steps: 30 s per
// attempt, at most 5 attempts, backoff 1 s doubling to 30 s, business errors not
// retried.
var ActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		MaximumAttempts:    5,
		InitialInterval:    time.Second,
		MaximumInterval:    30 * time.Second,
		BackoffCoefficient: 2.0,
		NonRetryableErrorTypes: []string{
			ErrPaymentDeclined, ErrInventoryPermanentlyUnavailable, // the article's
			ErrOrderRejected, ErrFulfillmentRejected,
		},
	},
}

// CompensationOptions are the options compensations run with: the same backoff,
// but no attempt limit, because a compensation that gives up leaves the saga
// half undone (inventory held, money taken) with nobody left to finish it.
var CompensationOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		MaximumAttempts:    0, // unlimited
		InitialInterval:    time.Second,
		MaximumInterval:    30 * time.Second,
		BackoffCoefficient: 2.0,
	},
}

// acts is the activities' receiver for method expressions: the workflow names
// activities by method; the worker registers a real *Activities.
var acts *Activities

// OrderSaga is the order saga. It returns the saga's Result when every step
// succeeded. When a step fails it runs the compensations of every step that
// completed, or may have (see the package doc), newest first, and fails with
// ErrCompensated (ErrCompensationFailed if a compensation failed for good)
// caused by the step's error. When the workflow is cancelled it compensates the
// same way and ends cancelled.
func OrderSaga(ctx workflow.Context, in OrderSagaInput) (Result, error) {
	ctx = workflow.WithActivityOptions(ctx, ActivityOptions)
	comp := Compensations{Options: CompensationOptions}
	res := Result{OrderID: in.OrderID}
	steps := []struct {
		name     string
		do, undo any
		out      *string
	}{
		{StepCreateOrder, acts.CreateOrder, acts.CancelOrder, nil},
		{StepReserveInventory, acts.ReserveInventory, acts.ReleaseInventory, &res.ReservationID},
		{StepProcessPayment, acts.ProcessPayment, acts.RefundPayment, &res.TransactionID},
		{StepNotifyFulfillment, acts.NotifyFulfillment, nil, nil},
	}
	for _, s := range steps {
		f := workflow.ExecuteActivity(ctx, s.do, in)
		var err error
		if s.out != nil {
			err = f.Get(ctx, s.out)
		} else {
			err = f.Get(ctx, nil)
		}
		if err == nil || !DidNothing(err) {
			if s.undo != nil {
				comp.Add(s.name, s.undo, in)
			}
		}
		if err != nil {
			log := workflow.GetLogger(ctx)
			log.Info("saga step failed; compensating", "step", s.name, "error", err)
			cerr := comp.Compensate(ctx)
			if temporal.IsCanceledError(err) {
				if cerr != nil {
					log.Error("cancelled saga: a compensation failed", "error", cerr)
				}
				return res, err // the workflow ends cancelled
			}
			if cerr != nil {
				return res, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("%s failed, and compensating failed: %v", s.name, cerr), ErrCompensationFailed, err)
			}
			return res, temporal.NewNonRetryableApplicationError(s.name+" failed; saga compensated", ErrCompensated, err)
		}
	}
	return res, nil
}

// DidNothing reports whether an activity's error says the activity made no
// change: a business rejection (a non-retryable application error). Any other
// failure (a timeout, a cancellation, retries exhausted on a transient error)
// leaves the outcome unknown: the activity may have committed and failed to
// report it, so its compensation must run too.
func DidNothing(err error) bool {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return false
	}
	if app.NonRetryable() {
		return true
	}
	for _, t := range ActivityOptions.RetryPolicy.NonRetryableErrorTypes {
		if app.Type() == t {
			return true
		}
	}
	return false
}
