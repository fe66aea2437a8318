package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// env is a test workflow environment with the saga and its activities on st.
func env(st Store) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	e := s.NewTestWorkflowEnvironment()
	// See the demo's testEnvRunner: the test environment fails the workflow
	// where a real worker retries a slow workflow task.
	e.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
	e.RegisterWorkflow(OrderSaga)
	e.RegisterWorkflow(articleOrderSaga)
	e.RegisterActivity(&Activities{Store: st})
	e.SetTestTimeout(time.Minute)
	return e
}

func order(id string, faults ...Fault) OrderSagaInput {
	return OrderSagaInput{OrderID: id, UserID: "user-1", Items: []OrderItem{{ProductID: "sku-1", Quantity: 2}},
		Amount: 4990, Currency: "USD", Faults: faults}
}

// kinds writes a journal as "step" and "undo step" lines, for comparison.
func kinds(t *testing.T, st Store, id string) []string {
	t.Helper()
	j, err := st.Journal(t.Context(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range j {
		if e.Undo {
			out = append(out, "undo "+e.Step)
		} else {
			out = append(out, e.Step)
		}
	}
	return out
}

// want is the journal of a saga whose step k (0-based) failed: steps 0..k-1
// done, then their compensations newest first (notify has none).
func want(k int) []string {
	out := append([]string(nil), Steps[:k]...)
	for i := k - 1; i >= 0; i-- {
		if Steps[i] != StepNotifyFulfillment {
			out = append(out, "undo "+Steps[i])
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func runSaga(t *testing.T, e *testsuite.TestWorkflowEnvironment, wf any, in OrderSagaInput) error {
	t.Helper()
	e.ExecuteWorkflow(wf, in)
	require.True(t, e.IsWorkflowCompleted())
	return e.GetWorkflowError()
}

func TestHappyPath(t *testing.T) {
	st := NewMemoryStore()
	e := env(st)
	require.NoError(t, runSaga(t, e, OrderSaga, order("o-happy")))
	var res Result
	require.NoError(t, e.GetWorkflowResult(&res))
	assert.Equal(t, Result{OrderID: "o-happy", ReservationID: "res-o-happy", TransactionID: "tx-o-happy"}, res)
	assert.Equal(t, Steps, kinds(t, st, "o-happy"))
	o, r, p := st.State("o-happy")
	assert.Equal(t, []string{OrderConfirmed, Reserved, Charged}, []string{o, r, p})
}

// A business rejection at any step compensates exactly the steps before it,
// newest first, and the rejected step runs once.
func TestRejectionAtEveryStepCompensatesCompletedStepsInReverse(t *testing.T) {
	for k, step := range Steps {
		t.Run(step, func(t *testing.T) {
			st := NewMemoryStore()
			e := env(st)
			attempts := countAttempts(e, step)
			err := runSaga(t, e, OrderSaga, order("o-"+step, Fault{Step: step, Kind: Reject}))
			assert.Equal(t, []string{ErrCompensated, BusinessError(step)}, errorTypes(err))
			assert.Equal(t, want(k), kinds(t, st, "o-"+step))
			assert.Equal(t, 1, *attempts, "a business error is not retried")
		})
	}
}

// A transient failure that outlasts the 5 attempts leaves the step's outcome
// unknown: it is compensated too. Failing before the write, that finds nothing
// to undo; failing after it (the write committed, the report lost), it undoes
// the write, which a saga that compensates only reported successes leaves behind.
func TestExhaustedRetriesCompensateTheUnknownStepToo(t *testing.T) {
	for k, step := range Steps {
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/after-write=%v", step, after), func(t *testing.T) {
				st := NewMemoryStore()
				e := env(st)
				attempts := countAttempts(e, step)
				id := fmt.Sprintf("o-%s-%v", step, after)
				err := runSaga(t, e, OrderSaga, order(id, Fault{Step: step, Kind: Transient, Times: 5, After: after}))
				require.Error(t, err)
				assert.Contains(t, err.Error(), "transient failure, attempt 5")
				assert.Equal(t, 5, *attempts, "MaximumAttempts")
				w := want(k)
				if after {
					w = want(k + 1) // the step committed: it is undone first
				}
				assert.Equal(t, w, kinds(t, st, id))
			})
		}
	}
}

// A transient failure within the retry budget is absorbed: the saga completes,
// and a step whose write committed before the failure is not done twice.
func TestRetryableFailureRecovers(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("after-write=%v", after), func(t *testing.T) {
			st := NewMemoryStore()
			e := env(st)
			attempts := countAttempts(e, StepProcessPayment)
			id := fmt.Sprintf("o-retry-%v", after)
			require.NoError(t, runSaga(t, e, OrderSaga, order(id, Fault{Step: StepProcessPayment, Kind: Transient, Times: 4, After: after})))
			assert.Equal(t, 5, *attempts)
			assert.Equal(t, Steps, kinds(t, st, id), "one charge")
		})
	}
}

// NonRetryableErrorTypes matches an ApplicationError's type, not an error's
// text: an activity that returns errors.New("PAYMENT_DECLINED") is retried
// five times, and an ApplicationError of that type once.
func TestNonRetryableTypesMatchApplicationErrorTypeOnly(t *testing.T) {
	for _, tt := range []struct {
		name     string
		err      error
		attempts int
	}{
		{"errors.New", errors.New(ErrPaymentDeclined), 5},
		{"ApplicationError", temporal.NewApplicationError("card declined", ErrPaymentDeclined), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := NewMemoryStore()
			e := env(st)
			n := 0
			e.OnActivity("ProcessPayment", mock.Anything, mock.Anything).Return(func(context.Context, OrderSagaInput) (string, error) {
				n++
				return "", tt.err
			})
			require.Error(t, runSaga(t, e, OrderSaga, order("o-declined")))
			assert.Equal(t, tt.attempts, n)
			assert.Equal(t, want(2), kinds(t, st, "o-declined"))
		})
	}
}

// cancelDuringPayment charges, then cancels the workflow while the payment
// activity is still running, as a user's "cancel my order" would: the payment
// committed, and the workflow never learns it.
func cancelDuringPayment(e *testsuite.TestWorkflowEnvironment, st Store) {
	e.OnActivity("ProcessPayment", mock.Anything, mock.Anything).Return(func(ctx context.Context, in OrderSagaInput) (string, error) {
		id, err := st.Charge(ctx, in.OrderID, in.Amount, in.Currency)
		if err != nil {
			return "", err
		}
		e.CancelWorkflow() // queued before this attempt's result: the workflow sees the cancellation first
		return id, nil
	})
}

// Cancelling mid-saga still compensates: the compensations run on a
// disconnected context, and the step in flight (its outcome unknown) is undone too.
func TestCancellationMidSagaCompensates(t *testing.T) {
	st := NewMemoryStore()
	e := env(st)
	cancelDuringPayment(e, st)
	err := runSaga(t, e, OrderSaga, order("o-cancel"))
	var canceled *temporal.CanceledError
	assert.ErrorAs(t, err, &canceled)
	assert.Equal(t, want(3), kinds(t, st, "o-cancel"))
	o, r, p := st.State("o-cancel")
	assert.Equal(t, []string{OrderCancelled, Released, Refunded}, []string{o, r, p})
}

// The article's saga compensates on the workflow's own context: once the
// workflow is cancelled, that context schedules nothing, so the order stays
// pending, the inventory held and the payment taken.
func TestArticleCancelledSagaCompensatesNothing(t *testing.T) {
	st := NewMemoryStore()
	e := env(st)
	cancelDuringPayment(e, st)
	err := runSaga(t, e, articleOrderSaga, order("o-article-cancel"))
	require.Error(t, err)
	assert.Equal(t, Steps[:3], kinds(t, st, "o-article-cancel"), "no compensation ran")
	o, r, p := st.State("o-article-cancel")
	assert.Equal(t, []string{OrderPending, Reserved, Charged}, []string{o, r, p})
}

// The article compensates with the forward steps' options (MaximumAttempts 5):
// a release that fails five times in a row is given up, and the reservation
// stays held. Here compensations retry until they succeed.
func TestArticleCompensationGivesUpAfterFiveAttempts(t *testing.T) {
	faults := []Fault{{Step: StepProcessPayment, Kind: Reject}, {Step: StepReserveInventory, Undo: true, Kind: Transient, Times: 5}}
	t.Run("article", func(t *testing.T) {
		st := NewMemoryStore()
		e := env(st)
		err := runSaga(t, e, articleOrderSaga, order("o-a", faults...))
		require.Error(t, err)
		assert.Equal(t, []string{StepCreateOrder, StepReserveInventory, "undo " + StepCreateOrder}, kinds(t, st, "o-a"), "release dropped")
		_, r, _ := st.State("o-a")
		assert.Equal(t, Reserved, r, "an orphan reservation")
	})
	t.Run("here", func(t *testing.T) {
		st := NewMemoryStore()
		e := env(st)
		attempts := countUndoAttempts(e, "ReleaseInventory")
		err := runSaga(t, e, OrderSaga, order("o-b", faults...))
		assert.Equal(t, []string{ErrCompensated, ErrPaymentDeclined}, errorTypes(err), "the compensation succeeded")
		assert.Equal(t, want(2), kinds(t, st, "o-b"))
		assert.Equal(t, 6, *attempts)
	})
}

// The article registers a compensation only after its step reported success.
// A payment that committed and then failed to report it (retries exhausted)
// is never refunded: the order is cancelled with the money taken.
func TestArticleUnknownOutcomeIsNotCompensated(t *testing.T) {
	f := Fault{Step: StepProcessPayment, Kind: Transient, Times: 5, After: true}
	st := NewMemoryStore()
	require.Error(t, runSaga(t, env(st), articleOrderSaga, order("o-a", f)))
	_, _, p := st.State("o-a")
	assert.Equal(t, Charged, p, "article: charged, order cancelled")
	assert.Equal(t, []string{StepCreateOrder, StepReserveInventory, StepProcessPayment, "undo " + StepReserveInventory, "undo " + StepCreateOrder}, kinds(t, st, "o-a"))

	require.Error(t, runSaga(t, env(st), OrderSaga, order("o-b", f)))
	_, _, p = st.State("o-b")
	assert.Equal(t, Refunded, p, "here: refunded")
}

// Saga is ACD without I: between a step and the compensation that undoes it,
// other transactions see the step's effect. A reader during the payment sees
// the inventory reserved for an order that will be cancelled.
func TestIntermediateStatesAreVisible(t *testing.T) {
	st := NewMemoryStore()
	e := env(st)
	var seen []string
	e.OnActivity("ProcessPayment", mock.Anything, mock.Anything).Return(func(_ context.Context, in OrderSagaInput) (string, error) {
		o, r, _ := st.State(in.OrderID)
		seen = []string{o, r}
		return "", temporal.NewApplicationError("declined", ErrPaymentDeclined)
	})
	require.Error(t, runSaga(t, e, OrderSaga, order("o-i")))
	assert.Equal(t, []string{OrderPending, Reserved}, seen, "visible mid-saga")
	o, r, _ := st.State("o-i")
	assert.Equal(t, []string{OrderCancelled, Released}, []string{o, r}, "undone after")
}

func TestCompensationsRunNewestFirst(t *testing.T) {
	st := NewMemoryStore()
	e := env(st)
	require.Error(t, runSaga(t, e, OrderSaga, order("o-lifo", Fault{Step: StepNotifyFulfillment, Kind: Reject})))
	j, err := st.Journal(t.Context(), "o-lifo")
	require.NoError(t, err)
	require.Len(t, j, 6)
	for i := 1; i < len(j); i++ {
		assert.False(t, j[i].At.Before(j[i-1].At), "journal in time order")
	}
	assert.Equal(t, []string{"undo " + StepProcessPayment, "undo " + StepReserveInventory, "undo " + StepCreateOrder}, kinds(t, st, "o-lifo")[3:],
		"the article's order: refund, then release, then cancel")
}

// The article's Amount float64: ten items at 0.10 do not add up to 1.00.
func TestArticleFloatAmount(t *testing.T) {
	var f float64
	var cents int64
	for range 10 {
		f += 0.10
		cents += 10
	}
	assert.NotEqual(t, 1.00, f, "float64: %v", f)
	assert.Equal(t, int64(100), cents)
}

// errorTypes lists the ApplicationError types in err's chain, outermost first.
func errorTypes(err error) []string {
	var out []string
	for ; err != nil; err = errors.Unwrap(err) {
		if app, ok := err.(*temporal.ApplicationError); ok {
			out = append(out, app.Type())
		}
	}
	return out
}

// countAttempts counts the attempts of step's activity without changing it.
func countAttempts(e *testsuite.TestWorkflowEnvironment, step string) *int {
	n := new(int)
	names := map[string]string{StepCreateOrder: "CreateOrder", StepReserveInventory: "ReserveInventory",
		StepProcessPayment: "ProcessPayment", StepNotifyFulfillment: "NotifyFulfillment"}
	e.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == names[step] {
			*n++
		}
	})
	return n
}

func countUndoAttempts(e *testsuite.TestWorkflowEnvironment, name string) *int {
	n := new(int)
	e.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == name {
			*n++
		}
	})
	return n
}

// articleOrderSaga models the article's workflow with this package's
// activities: a compensation is added only after its step succeeded, and
// compensations run on the workflow's context with the forward steps' options.
func articleOrderSaga(ctx workflow.Context, in OrderSagaInput) error {
	ctx = workflow.WithActivityOptions(ctx, ActivityOptions)
	saga := Compensations{Options: ActivityOptions, Attached: true}
	for _, s := range []struct {
		name     string
		do, undo any
	}{
		{StepCreateOrder, acts.CreateOrder, acts.CancelOrder},
		{StepReserveInventory, acts.ReserveInventory, acts.ReleaseInventory},
		{StepProcessPayment, acts.ProcessPayment, acts.RefundPayment},
		{StepNotifyFulfillment, acts.NotifyFulfillment, nil},
	} {
		if err := workflow.ExecuteActivity(ctx, s.do, in).Get(ctx, nil); err != nil {
			_ = saga.Compensate(ctx)
			return fmt.Errorf("%s: %w", strings.TrimSpace(s.name), err)
		}
		if s.undo != nil {
			saga.Add(s.name, s.undo, in)
		}
	}
	return nil
}

// lateSteps plays a step attempt that commits after its compensation ran (the
// attempt was slow, the workflow timed it out and compensated): the
// compensation found nothing, left a tombstone, and the late attempt changes
// nothing. An UPDATE ... WHERE id = ? compensation (the article's comments)
// would leave no tombstone and the late attempt would reserve and charge for
// a cancelled order.
func lateSteps(t *testing.T, st Store, id string) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, st.Release(ctx, id))
	require.NoError(t, st.Refund(ctx, id))
	require.NoError(t, st.CancelOrder(ctx, id))
	_, err := st.Reserve(ctx, id, nil)
	require.NoError(t, err)
	_, err = st.Charge(ctx, id, 100, "USD")
	require.NoError(t, err)
	require.NoError(t, st.CreateOrder(ctx, order(id)))
	assert.Empty(t, kinds(t, st, id), "nothing was undone, nothing was done")
}

func TestLateStepAfterCompensationDoesNothing(t *testing.T) {
	st := NewMemoryStore()
	lateSteps(t, st, "o-late")
	o, r, p := st.State("o-late")
	assert.Equal(t, []string{OrderCancelled, Released, Refunded}, []string{o, r, p})
}

// A zero Compensations runs its compensations with CompensationOptions (an
// activity without a timeout would be refused).
func TestZeroCompensationsUseCompensationOptions(t *testing.T) {
	st := NewMemoryStore()
	e := env(st)
	e.RegisterWorkflowWithOptions(func(ctx workflow.Context, in OrderSagaInput) error {
		var c Compensations
		c.Add(StepReserveInventory, acts.ReleaseInventory, in)
		return c.Compensate(ctx)
	}, workflow.RegisterOptions{Name: "zero"})
	_, err := st.Reserve(t.Context(), "o-zero", nil)
	require.NoError(t, err)
	e.ExecuteWorkflow("zero", order("o-zero"))
	require.NoError(t, e.GetWorkflowError())
	_, r, _ := st.State("o-zero")
	assert.Equal(t, Released, r)
}
