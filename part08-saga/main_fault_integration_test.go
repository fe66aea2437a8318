//go:build integration

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/saga"
)

// child is this test binary running the command with args, in its own process.
type child struct {
	cmd  *exec.Cmd
	out  chan string
	done chan error

	mu   sync.Mutex
	tail []string // its last lines of output, for a failure message
}

// lastLines is the child's last lines of output.
func (c *child) lastLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// startChild runs `part08-saga args...` as a process and waits until a line
// of its output contains ready.
func startChild(t *testing.T, ready string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PART08_CHILD="+strings.Join(args, " "))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, out: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.tail = append(c.tail, sc.Text())
			if len(c.tail) > 20 {
				c.tail = c.tail[1:]
			}
			c.mu.Unlock()
			select {
			case c.out <- sc.Text():
			default: // nobody reads after ready; drop
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() { c.kill(t) })
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case line := <-c.out:
			if strings.Contains(line, ready) {
				return c
			}
		case err := <-c.done:
			require.FailNow(t, "child exited before it was ready", "%v", err)
		case <-deadline:
			require.FailNow(t, "child never printed "+ready)
		}
	}
}

// kill SIGKILLs the child (no shutdown: a crash) and waits for it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	select {
	case err := <-c.done:
		t.Logf("child %d SIGKILLed: %v", c.cmd.Process.Pid, err)
	case <-time.After(30 * time.Second):
		t.Error("killed child did not exit")
	}
}

func pgAudit(t *testing.T) *saga.PostgresStore {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), stack.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, saga.Migrate(t.Context(), pool))
	return saga.NewPostgresStore(pool)
}

// sagaMix is n sagas: a third complete, a third are rejected at a step in
// turn, a third fail twice after their write committed (what a crash leaves
// behind) and then complete. It returns the inputs and the audit they must end in.
func sagaMix(prefix string, n int) ([]saga.OrderSagaInput, saga.Audit) {
	var ins []saga.OrderSagaInput
	var want saga.Audit
	for i := range n {
		in := saga.OrderSagaInput{OrderID: fmt.Sprintf("%s%03d", prefix, i), UserID: "u", Amount: 1000 + int64(i), Currency: "USD",
			Items: []saga.OrderItem{{ProductID: "sku", Quantity: 1}}}
		step := saga.Steps[i%len(saga.Steps)]
		switch i % 3 {
		case 0:
			want.Confirmed++
		case 1:
			in.Faults = []saga.Fault{{Step: step, Kind: saga.Reject}}
			switch step {
			case saga.StepCreateOrder:
				want.Orders-- // only the cancel's tombstone
				want.Cancelled--
			case saga.StepNotifyFulfillment:
				want.Charges++ // charged, then refunded
			}
			want.Cancelled++
		case 2: // fails twice after committing, then succeeds: the retry must not redo the write
			in.Faults = []saga.Fault{{Step: step, Kind: saga.Transient, Times: 2, After: true}}
			want.Confirmed++
		}
		ins = append(ins, in)
	}
	want.Orders += n
	want.Charges += want.Confirmed
	return ins, want
}

func startAll(t *testing.T, c client.Client, queue string, ins []saga.OrderSagaInput) []client.WorkflowRun {
	t.Helper()
	var runs []client.WorkflowRun
	for _, in := range ins {
		run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "order-" + in.OrderID, TaskQueue: queue}, saga.OrderSaga, in)
		require.NoError(t, err)
		runs = append(runs, run)
	}
	return runs
}

// waitAll waits for every saga's end and returns how many completed.
func waitAll(t *testing.T, runs []client.WorkflowRun) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	ok := 0
	for _, run := range runs {
		var res saga.Result
		err := run.Get(ctx, &res)
		require.NoError(t, ctx.Err(), "saga %s did not end", run.GetID())
		if err == nil {
			ok++
		}
	}
	return ok
}

// TestFaultWorkerKilledMidSaga SIGKILLs the worker process while 24 sagas are
// under way, then starts another: every saga completes or compensates fully,
// and PostgreSQL shows no double charge, no reservation held for an order that
// did not complete and no payment kept for one.
func TestFaultWorkerKilledMidSaga(t *testing.T) {
	stack.Require(t, stack.Temporal, stack.Postgres)
	st := pgAudit(t)
	c, err := dialTemporal(t.Context())
	require.NoError(t, err)
	defer c.Close()
	queue := "part08-fault-" + strings.ToLower(rand.Text()[:8])
	prefix := "fk-" + strings.ToLower(rand.Text()[:8]) + "-"
	args := []string{"worker", "-store", "postgres", "-task-queue", queue}

	first := startChild(t, "worker: task queue", args...)
	ins, want := sagaMix(prefix, 24)
	runs := startAll(t, c, queue, ins)
	// Kill once some sagas have made progress and others have not finished.
	require.Eventually(t, func() bool {
		a, err := st.Audit(t.Context(), prefix)
		return err == nil && a.Orders >= 8
	}, 2*time.Minute, 20*time.Millisecond)
	before, err := st.Audit(t.Context(), prefix)
	require.NoError(t, err)
	first.kill(t)
	t.Logf("worker killed with %d orders created, %d confirmed, %d cancelled", before.Orders, before.Confirmed, before.Cancelled)

	startChild(t, "worker: task queue", args...)
	assert.Equal(t, want.Confirmed, waitAll(t, runs), "sagas completed")
	a, err := st.Audit(t.Context(), prefix)
	require.NoError(t, err)
	t.Logf("after the restart: %+v", a)
	assert.Equal(t, want, a, "every saga completed or compensated; one charge each")
	assert.Zero(t, a.DoubleCharges, "double charges")
	assert.Zero(t, a.OrphanReservations, "orphan reservations")
	assert.Zero(t, a.ChargedNotConfirmed, "payments kept for orders that did not complete")
}

// TestFaultTemporalPausedMidSaga freezes the Temporal server while sagas run
// (a stall, not a crash), then resumes it: the worker's polls and the
// activities' completions wait, and every saga still ends as it should.
func TestFaultTemporalPausedMidSaga(t *testing.T) {
	stack.Require(t, stack.Temporal, stack.Postgres)
	st := pgAudit(t)
	r, err := newTemporalRunner(t.Context(), &saga.Activities{Store: st}, "part08-pause-"+strings.ToLower(rand.Text()[:8]))
	require.NoError(t, err)
	defer r.Close()
	prefix := "fp-" + strings.ToLower(rand.Text()[:8]) + "-"
	ins, want := sagaMix(prefix, 12)
	runs := startAll(t, r.c, r.queue, ins)
	require.Eventually(t, func() bool {
		a, err := st.Audit(t.Context(), prefix)
		return err == nil && a.Orders >= 4
	}, 2*time.Minute, 20*time.Millisecond)
	stack.Pause(t, "temporal")
	// The stall: a call that would take milliseconds gets no answer in 3 s.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	_, err = r.c.DescribeWorkflow(ctx, runs[0].GetID(), "")
	cancel()
	require.Error(t, err, "the paused server answered")
	stack.Resume(t, "temporal")
	assert.Equal(t, want.Confirmed, waitAll(t, runs))
	a, err := st.Audit(t.Context(), prefix)
	require.NoError(t, err)
	t.Logf("after the pause: %+v", a)
	assert.Equal(t, want, a)
}
