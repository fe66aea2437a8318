package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/payments"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/retry"
)

// The storm: for its first slowFor the server answers slowly (the payment is
// written, then the answer takes slowAnswer, longer than the clients'
// per-attempt timeout), then it recovers.
const (
	slowFor        = 400 * time.Millisecond
	slowAnswer     = 150 * time.Millisecond
	fastAnswer     = 2 * time.Millisecond
	attemptTimeout = 100 * time.Millisecond
	stormAttempts  = 8
)

var stormBackoff = retry.Backoff{Base: 50 * time.Millisecond, Max: time.Second}

// stormDemo lets clients that time out retry with their key, once against the
// bare payments handler and once behind the middleware.
func stormDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== Retry storm: %d clients pay once each; the server writes the payment, then answers in %v for its first %v (%v after) ==\n",
		o.clients, slowAnswer, slowFor, fastAnswer)
	fmt.Fprintf(w, "clients: %v per attempt, up to %d attempts, full jitter %v..%v, Retry-After honoured, the same Idempotency-Key on every attempt\n",
		attemptTimeout, stormAttempts, stormBackoff.Base, stormBackoff.Max)
	b, err := stormBackend(ctx, o.store)
	if err != nil {
		return err
	}
	defer b.close()
	tw := table(w)
	fmt.Fprintln(tw, "server\tattempts\ttimed out\t409 in progress\t201 created\t201 replayed\tother\tgave up\thandler runs\tpayments written\tdouble charges\tstore calls\ttook")
	for _, store := range []*counting{nil, b.store} {
		r, err := storm(ctx, store, o.clients)
		if err != nil {
			return err
		}
		name, calls := "no idempotency (the bare handler)", "-"
		if store != nil {
			name, calls = "Idempotency-Key middleware ("+b.name+")", fmt.Sprint(r.storeCalls)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", name, r.attempts, r.timedOut, r.conflict, r.created, r.replayed, r.other,
			r.gaveUp, r.stats.Runs, r.stats.Inserted, r.stats.Inserted-int64(r.paid), calls, ms(r.took))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "store: %s. A timed-out attempt's payment was written all the same; without the key every retry writes another.\n\n", b.where)
	return nil
}

// stormBackend picks the store the storm runs on: with -store auto the stack's
// Redis, else its PostgreSQL, else memory.
func stormBackend(ctx context.Context, which string) (backend, error) {
	if which != "auto" {
		return openBackend(ctx, which, false)
	}
	for _, kind := range []string{"redis", "postgres"} {
		if b, err := openBackend(ctx, kind, false); err == nil {
			return b, nil
		}
	}
	b, err := openBackend(ctx, "memory", false)
	b.where += " (neither the stack's Redis nor its PostgreSQL answers; `make up` to use them)"
	return b, err
}

type stormResult struct {
	attempts, timedOut, conflict, created, replayed, other int
	gaveUp, paid                                           int
	storeCalls                                             int64
	stats                                                  payments.Stats
	took                                                   time.Duration
}

// storm runs the clients against a fresh server, behind the middleware on
// store, or bare when store is nil.
func storm(ctx context.Context, store *counting, clients int) (stormResult, error) {
	start := time.Now()
	h := payments.NewHandler(payments.NewMemory(), payments.Options{Log: quiet, Delay: func() time.Duration {
		if time.Since(start) < slowFor {
			return slowAnswer
		}
		return fastAnswer
	}})
	var handler http.Handler = h
	if store != nil {
		store.calls.Store(0)
		mw, err := idempotency.New(idempotency.Config{Store: store, Required: true, Log: quiet})
		if err != nil {
			return stormResult{}, err
		}
		handler = mw.Wrap(h)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	defer transport.CloseIdleConnections()

	var (
		mu sync.Mutex
		r  stormResult
		wg sync.WaitGroup
	)
	c := &retry.Client{HTTP: &http.Client{Transport: transport}, Attempts: stormAttempts, Backoff: stormBackoff,
		AttemptTimeout: attemptTimeout, MaxWait: 2 * time.Second,
		Observe: func(a retry.Attempt) {
			mu.Lock()
			defer mu.Unlock()
			r.attempts++
			switch {
			case a.Err != nil && errors.Is(a.Err, context.DeadlineExceeded):
				r.timedOut++
			case a.Status == http.StatusConflict:
				r.conflict++
			case a.Status == http.StatusCreated && a.Header.Get(idempotency.HeaderReplayed) == "true":
				r.replayed++
			case a.Status == http.StatusCreated:
				r.created++
			default:
				r.other++
			}
		}}
	tenant := "storm-" + rand.Text()[:10]
	for range clients {
		wg.Go(func() {
			resp, err := c.Do(ctx, retry.Request{Method: http.MethodPost, URL: srv.URL + "/payments", Body: []byte(`{"amount":100}`),
				Header: http.Header{idempotency.HeaderTenant: {tenant}, "Content-Type": {"application/json"}}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				r.gaveUp++
			case resp.StatusCode == http.StatusCreated:
				r.paid++
			}
		})
	}
	wg.Wait()
	r.took = time.Since(start)
	// Without the middleware a timed-out attempt's handler may still be
	// writing its answer; the payments are written before that.
	r.stats = h.Stats()
	if store != nil {
		r.storeCalls = store.calls.Load()
	}
	return r, ctx.Err()
}
