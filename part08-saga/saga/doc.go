// Package saga is the article's order saga as a Temporal workflow: CreateOrder,
// ReserveInventory, ProcessPayment and NotifyFulfillment, each undone by its
// compensation (CancelOrder, ReleaseInventory, RefundPayment) in reverse order
// when a later step fails or the workflow is cancelled.
//
// What it fixes in the article:
//
//   - The Go SDK has no workflow.Saga (it is the Java SDK's); Compensations is
//     the small LIFO stack the workflow needs.
//   - Compensations run on a disconnected context, so a cancelled workflow still
//     undoes what it did; the article's run on the cancelled context and do nothing.
//   - Compensations retry without an attempt limit (capped backoff): with the
//     article's MaximumAttempts 5 a compensation that fails five times is dropped
//     and the saga stays half undone.
//   - A step whose outcome is unknown (timed out, cancelled, retries exhausted)
//     is compensated too, not only the steps that reported success: an activity
//     can commit and then fail to report it. Compensations therefore accept
//     "nothing to undo" and leave a tombstone, so a late attempt of the step
//     cannot redo it afterwards.
//   - Every activity is idempotent on the order id (Store), so a retry after a
//     crash between the commit and the report does nothing twice.
//   - Money is an integer of minor units, not the article's float64.
//
// Fault injects failures at any step, or in any compensation, through the
// workflow input, so a test or the demo can fail a saga on a real worker in
// another process.
package saga
