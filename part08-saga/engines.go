package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/saga"
)

// runner runs one saga to its end.
type runner interface {
	Run(ctx context.Context, in saga.OrderSagaInput) (saga.Result, error)
	Close()
}

// openRunner opens the -engine: the stack's Temporal with a worker in this
// process, or the SDK's test environment.
func openRunner(ctx context.Context, w io.Writer, engine string, acts *saga.Activities) (runner, string, error) {
	if engine != "testenv" {
		err := stack.Reachable(stack.Temporal, time.Second)
		if err == nil {
			r, err := newTemporalRunner(ctx, acts, "part08-demo-"+strings.ToLower(rand.Text()[:8]))
			if err == nil {
				return r, fmt.Sprintf("Temporal at %s, a worker in this process on task queue %s", stack.TemporalAddress(), r.queue), nil
			}
			if engine == "temporal" {
				return nil, "", err
			}
			fmt.Fprintf(w, "Temporal at %s answers but refused the worker (%v); using the SDK's test environment\n", stack.TemporalAddress(), err)
		} else {
			if engine == "temporal" {
				return nil, "", fmt.Errorf("temporal: %w; start it with `make up` or set %s", err, stack.EnvTemporal)
			}
			fmt.Fprintf(w, "Temporal: not reachable at %s; the same workflow and activities run in the SDK's test environment (in process, timers skipped). `make up` or set %s to use the dev server\n",
				stack.TemporalAddress(), stack.EnvTemporal)
		}
	}
	return testEnvRunner{acts}, "the SDK's test environment (go.temporal.io/sdk/testsuite)", nil
}

// testEnvRunner runs each saga in a fresh test environment: the workflow code
// and the activities are the worker's, the server is an in-process stand-in
// whose clock skips retry backoffs.
type testEnvRunner struct{ acts *saga.Activities }

func (r testEnvRunner) Run(_ context.Context, in saga.OrderSagaInput) (saga.Result, error) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quiet)
	env := s.NewTestWorkflowEnvironment()
	// A workflow task that runs past this fails the task: a real worker's is
	// retried by the server, the test environment's fails the workflow. A
	// loaded 2-core machine under -race can take over the default second for
	// the first task (the SDK's first-use setup).
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
	env.RegisterWorkflow(saga.OrderSaga)
	env.RegisterActivity(r.acts)
	env.ExecuteWorkflow(saga.OrderSaga, in)
	var res saga.Result
	if err := env.GetWorkflowError(); err != nil {
		return res, err
	}
	return res, env.GetWorkflowResult(&res)
}

func (testEnvRunner) Close() {}

// temporalRunner starts sagas on the stack's Temporal and runs a worker for
// them in this process.
type temporalRunner struct {
	c     client.Client
	w     worker.Worker
	queue string
}

func dialTemporal(ctx context.Context) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: stack.TemporalAddress(), Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("temporal at %s: %w", stack.TemporalAddress(), err)
	}
	return c, nil
}

func newTemporalRunner(ctx context.Context, acts *saga.Activities, queue string) (*temporalRunner, error) {
	c, err := dialTemporal(ctx)
	if err != nil {
		return nil, err
	}
	w := newWorker(c, queue, acts)
	if err := w.Start(); err != nil {
		c.Close()
		return nil, err
	}
	return &temporalRunner{c, w, queue}, nil
}

// newWorker is the saga's worker: the workflow and the activities on queue.
func newWorker(c client.Client, queue string, acts *saga.Activities) worker.Worker {
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(saga.OrderSaga)
	w.RegisterActivity(acts)
	return w
}

func (r *temporalRunner) Run(ctx context.Context, in saga.OrderSagaInput) (saga.Result, error) {
	return startSaga(ctx, r.c, r.queue, in)
}

// startSaga starts the saga of in.OrderID (or attaches to it if it is already
// running: the workflow id is the order id) and waits for its end.
func startSaga(ctx context.Context, c client.Client, queue string, in saga.OrderSagaInput) (saga.Result, error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "order-" + in.OrderID, TaskQueue: queue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, saga.OrderSaga, in)
	var res saga.Result
	if err != nil {
		return res, err
	}
	return res, run.Get(ctx, &res)
}

func (r *temporalRunner) Close() {
	r.w.Stop()
	r.c.Close()
}

// openStore opens the -store: PostgreSQL (schema part08) or memory.
func openStore(ctx context.Context, w io.Writer, which string) (saga.Store, string, func(), error) {
	if which != "memory" {
		pool, err := openPostgres(ctx)
		if err == nil {
			return saga.NewPostgresStore(pool), "PostgreSQL at " + redacted(stack.DatabaseURL()) + " (tables part08.*)", pool.Close, nil
		}
		if which == "postgres" {
			return nil, "", nil, fmt.Errorf("postgres: %w; start it with `make up` or set %s", err, stack.EnvPostgres)
		}
		fmt.Fprintf(w, "PostgreSQL: not reachable (%v); saga state kept in memory. `make up` or set %s to keep it in PostgreSQL\n", err, stack.EnvPostgres)
	}
	return saga.NewMemoryStore(), "memory (this process)", func() {}, nil
}

// openPostgres connects to DATABASE_URL and creates the saga's tables, giving
// up within seconds so the demo stays quick without a database.
func openPostgres(ctx context.Context) (*pgxpool.Pool, error) {
	if err := stack.Reachable(stack.Postgres, time.Second); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, stack.DatabaseURL())
	if err != nil {
		return nil, err
	}
	if err := errors.Join(pool.Ping(ctx), saga.Migrate(ctx, pool)); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// redacted hides the password in a connection URL before it is printed.
func redacted(dsn string) string {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return "(unparseable DATABASE_URL)"
	}
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// errorTypes lists the application error types in err's chain, outermost
// first: SAGA_COMPENSATED, then the step's own (PAYMENT_DECLINED).
func errorTypes(err error) []string {
	var out []string
	for ; err != nil; err = errors.Unwrap(err) {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app == err { //nolint:errorlint // each link once
			out = append(out, app.Type())
		}
	}
	return out
}
