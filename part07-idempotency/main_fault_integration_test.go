//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/payments"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/retry"
)

// answer is one response the fault test got.
type answer struct {
	status   int
	replayed bool
	body     string
}

// TestFaultRedisKilledMidRequest and TestFaultPostgresKilledMidRequest kill
// the store while a payment is in flight (written, its answer not yet
// recorded), then restart it:
//
//   - every request that arrives while the store is down is a 503 and runs
//     nothing, the in-flight request's key included;
//   - after the restart the in-flight request records its result (the
//     middleware retries for CompleteTimeout) and every retry replays it;
//   - exactly one payment is written for the key.
//
// The stores differ in one step. PostgreSQL keeps the claim across the kill,
// so a retry that comes before the in-flight request has finished is a 409.
// The stack's Redis keeps nothing on disk: the restarted Redis has forgotten
// the claim, the retry runs the handler again, and only the payments table's
// unique (tenant, key) stops a second payment.
func TestFaultRedisKilledMidRequest(t *testing.T) {
	faultMidRequest(t, stack.Redis, "redis", http.StatusCreated)
}

func TestFaultPostgresKilledMidRequest(t *testing.T) {
	faultMidRequest(t, stack.Postgres, "postgres", http.StatusConflict)
}

func faultMidRequest(t *testing.T, svc stack.Service, kind string, retryWhileInFlight int) {
	stack.Require(t, svc)
	b, err := openBackend(t.Context(), kind, false)
	require.NoError(t, err)
	t.Cleanup(b.close)

	entered, gate := make(chan struct{}), make(chan struct{})
	var block atomic.Bool
	h := payments.NewHandler(payments.NewMemory(), payments.Options{Log: quiet, Delay: func() time.Duration {
		if block.CompareAndSwap(true, false) {
			close(entered) // the payment is written; hold the answer
			<-gate
		}
		return 0
	}})
	mw, err := idempotency.New(idempotency.Config{Store: b.store, Required: true, Log: quiet,
		StoreTimeout: time.Second, CompleteTimeout: 2 * time.Minute})
	require.NoError(t, err)
	srv := httptest.NewServer(mw.Wrap(h))
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 3 * time.Minute}
	tenant, key, other := "fault-"+rand.Text()[:10], retry.NewKey(), retry.NewKey()
	post := func(key string) answer {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/payments", strings.NewReader(`{"amount":100}`))
		require.NoError(t, err)
		req.Header.Set(idempotency.HeaderKey, key)
		req.Header.Set(idempotency.HeaderTenant, tenant)
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return answer{resp.StatusCode, resp.Header.Get(idempotency.HeaderReplayed) == "true", string(body)}
	}

	block.Store(true)
	inFlight := make(chan answer, 1)
	go func() {
		// Not post: require must stay on the test goroutine.
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/payments", strings.NewReader(`{"amount":100}`))
		req.Header.Set(idempotency.HeaderKey, key)
		req.Header.Set(idempotency.HeaderTenant, tenant)
		resp, err := client.Do(req)
		if err != nil {
			inFlight <- answer{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		inFlight <- answer{resp.StatusCode, false, string(body)}
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the first request never reached the handler")
	}

	stack.Kill(t, string(svc))
	for _, k := range []string{key, other} {
		a := post(k)
		assert.Equal(t, http.StatusServiceUnavailable, a.status, "store down: %s", a.body)
	}
	assert.Equal(t, payments.Stats{Runs: 1, Inserted: 1}, h.Stats(), "nothing ran while the store was down")

	stack.Restart(t, string(svc))
	// The client pools still hold connections to the killed process: the
	// first calls on them fail (503) until fresh ones are dialled.
	a := post(key)
	for i := 0; a.status == http.StatusServiceUnavailable && i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		a = post(key)
	}
	assert.Equal(t, retryWhileInFlight, a.status, "a retry while the first request is still in flight: %s", a.body)

	close(gate)
	var first answer
	select {
	case first = <-inFlight:
	case <-time.After(3 * time.Minute):
		require.FailNow(t, "the in-flight request never answered")
	}
	require.Equal(t, http.StatusCreated, first.status, first.body)
	if a.status == http.StatusCreated {
		assert.Equal(t, first.body, a.body, "the second run answered with the stored payment")
	}
	for range 2 {
		again := post(key)
		assert.Equal(t, http.StatusCreated, again.status)
		assert.True(t, again.replayed, "recorded after the restart")
		assert.Equal(t, first.body, again.body)
	}
	assert.Equal(t, http.StatusCreated, post(other).status, "the key refused during the outage runs now")

	stats := h.Stats()
	assert.Equal(t, int64(2), stats.Inserted, "one payment per key: no double charge")
	t.Logf("store %s: handler runs %d, payments written %d, repeats stopped by the unique key %d", kind, stats.Runs, stats.Inserted, stats.Repeats)
	if kind == "redis" {
		assert.Equal(t, int64(1), stats.Repeats, "Redis forgot the claim; the table's unique key caught the repeat")
	} else {
		assert.Zero(t, stats.Repeats, "PostgreSQL kept the claim: the handler never ran twice")
	}
}

// TestFaultStalledClaimLeavesTheKeyClaimable pauses the store while a
// request's Claim is on its way, so the claim is sent but not answered, then
// resumes it and retries the request with the same key, as a client that got
// a 503 ("not processed, retry") would. The store runs the stalled command
// when it wakes; that must not leave a claim nobody holds (every retry a 409
// until ClaimTTL, the handler never run). In the second case the client also
// hangs up during the stalled Claim, and the store wakes before StoreTimeout.
func TestFaultStalledClaimLeavesTheKeyClaimable(t *testing.T) {
	for _, store := range []struct {
		svc  stack.Service
		kind string
	}{{stack.Redis, "redis"}, {stack.Postgres, "postgres"}} {
		t.Run(store.kind+"/the store stalls past StoreTimeout", func(t *testing.T) { stalledClaim(t, store.svc, store.kind, false) })
		t.Run(store.kind+"/the client hangs up during the stalled Claim", func(t *testing.T) { stalledClaim(t, store.svc, store.kind, true) })
	}
}

func stalledClaim(t *testing.T, svc stack.Service, kind string, clientLeaves bool) {
	stack.Require(t, svc)
	b, err := openBackend(t.Context(), kind, false)
	require.NoError(t, err)
	t.Cleanup(b.close)
	const storeTimeout = 500 * time.Millisecond
	var runs atomic.Int64
	mw, err := idempotency.New(idempotency.Config{Store: b.store, Required: true, Log: quiet, StoreTimeout: storeTimeout})
	require.NoError(t, err)
	srv := httptest.NewServer(mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		runs.Add(1)
		w.WriteHeader(http.StatusCreated)
	})))
	t.Cleanup(srv.Close)
	tenant := "stall-" + rand.Text()[:10]
	send := func(ctx context.Context, key string) (answer, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/payments", strings.NewReader(`{"amount":100}`))
		if err != nil {
			return answer{}, err
		}
		req.Header.Set(idempotency.HeaderKey, key)
		req.Header.Set(idempotency.HeaderTenant, tenant)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header.Get(idempotency.HeaderReplayed) == "true", string(body)}, err
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	warm, err := send(ctx, retry.NewKey()) // the pool holds an open connection, as it does in production
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, warm.status, warm.body)
	runs.Store(0)

	key := retry.NewKey()
	stack.Pause(t, string(svc))
	if clientLeaves {
		leave, stop := context.WithTimeout(ctx, storeTimeout/3)
		_, err := send(leave, key)
		stop()
		assert.ErrorIs(t, err, context.DeadlineExceeded, "the client hung up")
		time.Sleep(storeTimeout / 3) // the Claim is still on its way
	} else {
		a, err := send(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, a.status, "the store stalled: %s", a.body)
	}
	stack.Resume(t, string(svc))

	// Retry every 250 ms for 8 s, as a client honouring Retry-After would.
	var got []int
	var a answer
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		a, err = send(ctx, key)
		require.NoError(t, err)
		got = append(got, a.status)
		if a.status == http.StatusCreated {
			break
		}
	}
	require.Equal(t, http.StatusCreated, a.status, "the retries got %v: the key is held by a claim nobody holds", got)
	assert.Equal(t, int64(1), runs.Load(), "one execution for the key")
	again, err := send(ctx, key)
	require.NoError(t, err)
	assert.True(t, again.replayed, "then replayed")
	t.Logf("%s: retries answered %v; executions %d", kind, got, runs.Load())
}
