//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/saga"
)

// BenchmarkRelayLatency writes 1,000 events per op, one per transaction 1 ms
// apart, through each relay and reports the commit → consumer latency: the
// CDC relay beside the article's "typically 100–500ms", the polling relay at
// its 100 ms idle interval. The p99 of each stage says where a slow tail
// comes from: to-relay (the database and the relay: WAL decoding or polling,
// batching, waiting for the previous Kafka write), kafka (the write until all
// in-sync replicas acknowledged), to-consumer. ns/op is per 1,000 events,
// the 1 ms pace included.
func BenchmarkRelayLatency(b *testing.B) {
	stack.Require(b, stack.Postgres, stack.Kafka)
	pool, err := openPostgres(b.Context())
	require.NoError(b, err)
	defer pool.Close()
	for _, kind := range []string{"cdc", "poll"} {
		b.Run("relay="+kind, func(b *testing.B) {
			r, err := measureRelay(b.Context(), pool, kind, 1000*b.N, 100*time.Millisecond)
			require.NoError(b, err)
			b.ReportMetric(float64(r.pct(50))/1e6, "p50-ms")
			b.ReportMetric(float64(r.pct(99))/1e6, "p99-ms")
			b.ReportMetric(float64(pct(r.toRelay, 99))/1e6, "p99-to-relay-ms")
			b.ReportMetric(float64(pct(r.kafka, 99))/1e6, "p99-kafka-ms")
			b.ReportMetric(float64(pct(r.toConsumer, 99))/1e6, "p99-to-consumer-ms")
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
// server's SQLite sustain on this machine. No timer or retry is on the path
// (TestHistoryShape); each saga is nine task round trips through the server,
// so on a shared machine sagas/s follows the CPU left over: p50-saga-ms is a
// saga's start → end with 15 others in flight (sagas/s ≈ 16 / that), and
// worker-cpu-ms/saga and server-cpu-ms/saga the CPU this process (worker and
// client) and the stack's Temporal dev server spent per saga, which the
// machine's load does not change much.
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
	took := make(chan time.Duration, perOp*b.N)
	cpu0 := cpuTime(b)
	server0, serverOK := temporalCPU()
	if !serverOK {
		b.Log("no server-cpu-ms/saga: the stack's Temporal pid file or /proc is not readable")
	}
	start := time.Now()
	for i := range perOp * b.N {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			_, err := r.Run(b.Context(), saga.OrderSagaInput{OrderID: fmt.Sprintf("%s%d", prefix, i), UserID: "u", Amount: 100, Currency: "USD",
				Items: []saga.OrderItem{{ProductID: "sku", Quantity: 1}}})
			if err != nil {
				errs <- err
			}
			took <- time.Since(t0)
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	server1, ok := temporalCPU()
	close(errs)
	close(took)
	require.NoError(b, <-errs)
	var lat []time.Duration
	for d := range took {
		lat = append(lat, d)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(perOp*b.N)/elapsed.Seconds(), "sagas/s")
	b.ReportMetric(float64(pct(lat, 50))/1e6, "p50-saga-ms")
	b.ReportMetric(float64(cpu)/1e6/float64(perOp*b.N), "worker-cpu-ms/saga")
	if serverOK && ok {
		b.ReportMetric(float64(server1-server0)/1e6/float64(perOp*b.N), "server-cpu-ms/saga")
	}
}

// temporalCPU is the CPU time the stack's Temporal server has used, read
// from /proc through scripts/stack's pid file (STACK_DIR, else .stack).
func temporalCPU() (time.Duration, bool) {
	dir := os.Getenv("STACK_DIR")
	if dir == "" {
		dir = filepath.Join("..", ".stack")
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "temporal", "pid"))
	if err != nil {
		return 0, false
	}
	pid, _, _ := strings.Cut(strings.TrimSpace(string(pidFile)), " ")
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, false
	}
	// After the command's ")": state is field 3, utime 14 and stime 15, in
	// clock ticks (100 a second on Linux).
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
