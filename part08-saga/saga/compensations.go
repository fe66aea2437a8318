package saga

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// Compensations is a LIFO stack of compensating activities, the part of the
// Java SDK's Saga class a Go workflow needs (the Go SDK has none). A workflow
// adds a step's compensation once the step has run (or may have run), and calls
// Compensate when a later step fails or the workflow is cancelled. It is
// workflow code: deterministic, used by one workflow goroutine.
type Compensations struct {
	// Options are the compensations' activity options; the zero value means
	// CompensationOptions (retried without limit).
	Options workflow.ActivityOptions
	// Attached runs the compensations on the workflow's own context, as the
	// article's saga.Compensate(ctx) does. A cancelled workflow's context
	// refuses to schedule activities, so then nothing is compensated. The
	// default runs them on a disconnected context.
	Attached bool

	steps []compensation
}

type compensation struct {
	name     string
	activity any
	args     []any
}

// Add pushes the compensation of step: activity called with args.
func (c *Compensations) Add(step string, activity any, args ...any) {
	c.steps = append(c.steps, compensation{step, activity, args})
}

// Len is the number of compensations waiting.
func (c *Compensations) Len() int { return len(c.steps) }

// Compensate runs the compensations newest first, one at a time, each to its
// end before the next starts (a refund before the inventory is released, before
// the order is cancelled). A compensation that fails for good does not stop the
// others; the failures are joined into the returned error. The stack is empty
// afterwards.
func (c *Compensations) Compensate(ctx workflow.Context) error {
	if !c.Attached {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	opts := c.Options
	if opts.StartToCloseTimeout == 0 && opts.ScheduleToCloseTimeout == 0 {
		opts = CompensationOptions
	}
	ctx = workflow.WithActivityOptions(ctx, opts)
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		s := c.steps[i]
		if err := workflow.ExecuteActivity(ctx, s.activity, s.args...).Get(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("compensate %s: %w", s.name, err))
		}
	}
	c.steps = nil
	return errors.Join(errs...)
}
