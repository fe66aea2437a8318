//go:build integration

package saga

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
	"log/slog"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// pgStore opens the stack's PostgreSQL with the saga's tables.
func pgStore(t *testing.T) *PostgresStore {
	t.Helper()
	stack.Require(t, stack.Postgres)
	pool, err := pgxpool.New(t.Context(), stack.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, Migrate(t.Context(), pool))
	return NewPostgresStore(pool)
}

// onTemporal starts a worker for the saga on a fresh task queue of the
// stack's Temporal and returns a client and the queue.
func onTemporal(t *testing.T, st Store) (client.Client, string) {
	t.Helper()
	stack.Require(t, stack.Temporal)
	c, err := client.Dial(client.Options{HostPort: stack.TemporalAddress(), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	queue := "part08-test-" + strings.ToLower(rand.Text()[:10])
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(OrderSaga)
	w.RegisterActivity(&Activities{Store: st})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return c, queue
}

func start(t *testing.T, c client.Client, queue string, in OrderSagaInput) client.WorkflowRun {
	t.Helper()
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "order-" + in.OrderID, TaskQueue: queue}, OrderSaga, in)
	require.NoError(t, err)
	return run
}

func wait(t *testing.T, run client.WorkflowRun) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var res Result
	return run.Get(ctx, &res)
}

// The saga on the stack's Temporal and PostgreSQL: the happy path, a
// rejection at every step and a cancellation mid-saga leave the journal the
// workflow tests predict, and the audit finds nothing held or taken. With
// PART08_RECORD_HISTORIES=1 it rewrites testdata/histories, which
// TestReplayRecordedHistories replays.
func TestSagaOnTemporal(t *testing.T) {
	st := pgStore(t)
	c, queue := onTemporal(t, st)
	prefix := "it-" + strings.ToLower(rand.Text()[:8]) + "-"
	record := map[string]client.WorkflowRun{}

	id := prefix + "happy"
	run := start(t, c, queue, order(id))
	require.NoError(t, wait(t, run))
	assert.Equal(t, Steps, kinds(t, st, id))
	record["completed"] = run

	for k, step := range Steps {
		id := prefix + step
		run := start(t, c, queue, order(id, Fault{Step: step, Kind: Reject}))
		err := wait(t, run)
		require.Error(t, err)
		assert.Equal(t, []string{ErrCompensated, BusinessError(step)}, errorTypes(err))
		assert.Equal(t, want(k), kinds(t, st, id))
		record["rejected-at-"+step] = run
	}

	// Cancelled while the payment waits out a retry backoff: its outcome is
	// unknown, so it is refunded (a tombstone) along with the rest.
	id = prefix + "cancel"
	run = start(t, c, queue, order(id, Fault{Step: StepProcessPayment, Kind: Transient, Times: 5}))
	require.Eventually(t, func() bool { return len(kinds(t, st, id)) == 2 }, time.Minute, 50*time.Millisecond, "reserve ran")
	require.NoError(t, c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()))
	err := wait(t, run)
	var canceled *temporal.CanceledError
	require.ErrorAs(t, err, &canceled)
	assert.Equal(t, want(2), kinds(t, st, id))
	record["cancelled-during-payment"] = run

	a, err := st.Audit(t.Context(), prefix)
	require.NoError(t, err)
	assert.Equal(t, Audit{Orders: 5, Confirmed: 1, Cancelled: 4, Charges: 2}, a, "the notify rejection charged and refunded")

	if os.Getenv("PART08_RECORD_HISTORIES") == "1" {
		for name, run := range record {
			writeHistory(t, c, run, filepath.Join("testdata", "histories", name+".json"))
		}
	}
}

func writeHistory(t *testing.T, c client.Client, run client.WorkflowRun, path string) {
	t.Helper()
	var h historypb.History
	it := c.GetWorkflowHistory(t.Context(), run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(&h)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	t.Logf("recorded %s (%d events)", path, len(h.Events))
}

// The same rejections on PostgreSQL in the test environment, and the article's
// unknown-outcome case: the upserts and tombstones behave as the memory store's.
func TestPostgresStoreInTestEnvironment(t *testing.T) {
	st := pgStore(t)
	prefix := "pg-" + strings.ToLower(rand.Text()[:8]) + "-"
	for k, step := range Steps {
		for _, after := range []bool{false, true} {
			id := fmt.Sprintf("%s%s-%v", prefix, step, after)
			require.Error(t, runSaga(t, env(st), OrderSaga, order(id, Fault{Step: step, Kind: Transient, Times: 5, After: after})))
			w := want(k)
			if after {
				w = want(k + 1)
			}
			assert.Equal(t, w, kinds(t, st, id), id)
		}
	}
	a, err := st.Audit(t.Context(), prefix)
	require.NoError(t, err)
	assert.Zero(t, a.OrphanReservations+a.ChargedNotConfirmed+a.DoubleCharges+a.Pending, "%+v", a)

	lateSteps(t, st, prefix+"late")
	late, err := st.Audit(t.Context(), prefix+"late")
	require.NoError(t, err)
	assert.Equal(t, Audit{}, late, "only tombstones: no order, no reservation, no charge")

	id := prefix + "article"
	require.Error(t, runSaga(t, env(st), articleOrderSaga, order(id, Fault{Step: StepProcessPayment, Kind: Transient, Times: 5, After: true})))
	a, err = st.Audit(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, 1, a.ChargedNotConfirmed, "the article's saga: the order cancelled, the money kept")
}
