package saga

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories recorded on the Temporal dev
// server (TestSagaOnTemporal with PART08_RECORD_HISTORIES=1) through today's
// workflow code. A change that alters the commands the workflow emits for the
// same events (a step reordered, added or removed, a compensation moved) fails
// here with a nondeterminism error, before it can strand running sagas.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 6, "completed, a rejection at each step, a cancellation")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(OrderSaga)
			assert.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), f))
		})
	}
}

// The replay test can fail: the article's workflow (compensations on the
// cancelled context, so none are scheduled) does not replay the history of a
// saga cancelled during the payment.
func TestReplayCatchesAReorderedWorkflow(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(articleOrderSaga, workflow.RegisterOptions{Name: "OrderSaga"})
	err := r.ReplayWorkflowHistoryFromJSONFile(log.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		filepath.Join("testdata", "histories", "cancelled-during-payment.json"))
	assert.ErrorContains(t, err, "TMPRL1100", "Temporal's nondeterminism error")
}
