//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/saga"
)

// BenchmarkRelayLatency writes 200 events per op, one per transaction 1 ms
// apart, through each relay and reports the commit → consumer latency: the
// CDC relay beside the article's "typically 100–500ms", the polling relay at
// its 100 ms idle interval. ns/op is per 200 events, the 1 ms pace included.
func BenchmarkRelayLatency(b *testing.B) {
	stack.Require(b, stack.Postgres, stack.Kafka)
	pool, err := openPostgres(b.Context())
	require.NoError(b, err)
	defer pool.Close()
	for _, kind := range []string{"cdc", "poll"} {
		b.Run("relay="+kind, func(b *testing.B) {
			r, err := measureRelay(b.Context(), pool, kind, 200*b.N, 100*time.Millisecond)
			require.NoError(b, err)
			b.ReportMetric(float64(r.pct(50))/1e6, "p50-ms")
			b.ReportMetric(float64(r.pct(99))/1e6, "p99-ms")
			b.ReportMetric(float64(r.duplicates), "duplicates")
		})
	}
}

// benchWorker is a worker in this process on a fresh task queue of the
// stack's Temporal, with its state in PostgreSQL.
func benchWorker(b *testing.B, acts *saga.Activities) *temporalRunner {
	b.Helper()
	stack.Require(b, stack.Temporal, stack.Postgres)
	r, err := newTemporalRunner(b.Context(), acts, "part08-bench-"+strings.ToLower(rand.Text()[:8]))
	require.NoError(b, err)
	b.Cleanup(r.Close)
	return r
}

// BenchmarkSagaThroughput runs 32 happy-path sagas per op, 16 at a time, on
// the dev server with one worker: sagas/s is what one worker and the dev
// server's SQLite sustain on this machine.
func BenchmarkSagaThroughput(b *testing.B) {
	pool, err := openPostgres(b.Context())
	require.NoError(b, err)
	defer pool.Close()
	r := benchWorker(b, &saga.Activities{Store: saga.NewPostgresStore(pool)})
	prefix := "bt-" + strings.ToLower(rand.Text()[:8]) + "-"
	const perOp, inFlight = 32, 16
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	errs := make(chan error, perOp*b.N)
	start := time.Now()
	for i := range perOp * b.N {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := r.Run(b.Context(), saga.OrderSagaInput{OrderID: fmt.Sprintf("%s%d", prefix, i), UserID: "u", Amount: 100, Currency: "USD",
				Items: []saga.OrderItem{{ProductID: "sku", Quantity: 1}}})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	require.NoError(b, <-errs)
	b.ReportMetric(float64(perOp*b.N)/elapsed.Seconds(), "sagas/s")
}

// BenchmarkFailureToLastCompensation runs 8 sagas per op whose payment is
// declined and reports the time from the payment activity's failure to the
// journal's last compensation (cancel order): the workflow task that sees the
// failure, then two compensations one after the other, through the server.
func BenchmarkFailureToLastCompensation(b *testing.B) {
	pool, err := openPostgres(b.Context())
	require.NoError(b, err)
	defer pool.Close()
	st := saga.NewPostgresStore(pool)
	var mu sync.Mutex
	failedAt := map[string]time.Time{}
	r := benchWorker(b, &saga.Activities{Store: st, Failed: func(in saga.OrderSagaInput, _ string, _ bool, _ error) {
		mu.Lock()
		failedAt[in.OrderID] = time.Now()
		mu.Unlock()
	}})
	prefix := "bc-" + strings.ToLower(rand.Text()[:8]) + "-"
	var took []time.Duration
	for i := range 8 * b.N {
		id := fmt.Sprintf("%s%d", prefix, i)
		_, err := r.Run(b.Context(), saga.OrderSagaInput{OrderID: id, UserID: "u", Amount: 100, Currency: "USD",
			Faults: []saga.Fault{{Step: saga.StepProcessPayment, Kind: saga.Reject}}})
		require.Error(b, err)
		j, err := st.Journal(context.Background(), id)
		require.NoError(b, err)
		require.NotEmpty(b, j)
		mu.Lock()
		took = append(took, j[len(j)-1].At.Sub(failedAt[id]))
		mu.Unlock()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99+99)/100-1])/1e6, "p99-ms")
}
