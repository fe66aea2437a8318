package saga

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
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

// What orchestration costs in messages, read from the recorded histories: a
// completed saga is 29 history events (5 workflow tasks, 4 activity tasks),
// one declined at the payment 35 (6 workflow tasks; 3 activities and 2
// compensations). The README
// sets this beside the choreography's 4 and 5 events.
func TestHistoryShape(t *testing.T) {
	for _, tt := range []struct {
		file                  string
		events, wfTasks, acts int
	}{
		{"completed.json", 29, 5, 4},
		{"rejected-at-process-payment.json", 35, 6, 5},
	} {
		f, err := os.Open(filepath.Join("testdata", "histories", tt.file))
		require.NoError(t, err)
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		require.NoError(t, f.Close())
		require.NoError(t, err)
		wf, acts := 0, 0
		for _, e := range h.Events {
			switch e.EventType {
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
				wf++
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				acts++
			}
		}
		assert.Equal(t, []int{tt.events, tt.wfTasks, tt.acts}, []int{len(h.Events), wf, acts}, tt.file)
	}
}
