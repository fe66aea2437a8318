package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/payments"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/retry"
)

// handlerDelay is how long the payments handler takes after writing a
// payment in the concurrent experiment: long enough that the first
// requests find the key in progress.
const handlerDelay = 5 * time.Millisecond

// concurrentDemo runs the article's TestIdempotencyMutualExclusion over a
// real loopback HTTP server on every store: N goroutines, one key, one body.
func concurrentDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== %d concurrent requests, one Idempotency-Key, body {\"amount\":100}: the article's test, over HTTP ==\n", o.requests)
	backends, err := openBackends(ctx, w, o.store)
	if err != nil {
		return err
	}
	defer func() {
		for _, b := range backends {
			b.close()
		}
	}()
	tw := table(w)
	fmt.Fprintln(tw, "store\texecutions\tpayments written\t201 created\t201 replayed\t409 in progress\tother\tround trips first/replay\ttook\tvia")
	for _, b := range backends {
		r, err := hammer(ctx, b, o.requests)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d / %d %s\t%s\t%s\n", b.name, r.executions, r.written, r.created, r.replayed, r.conflict, r.other,
			r.firstRT, r.replayRT, r.rtUnit, ms(r.took), b.where)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "the article expects \"1 Created, 99 Conflict\"; a request that arrives after the first one finished gets its replayed 201,\n")
	fmt.Fprintf(w, "so what holds is 1 execution and created + replayed + in progress = %d.\n\n", o.requests)
	return nil
}

type hammerResult struct {
	executions, written                int64
	created, replayed, conflict, other int
	firstRT, replayRT                  int64
	rtUnit                             string
	took                               time.Duration
}

// hammer sends n requests at once with one key, then measures the store
// round trips of one more key's first request and replay.
func hammer(ctx context.Context, b backend, n int) (hammerResult, error) {
	h := payments.NewHandler(payments.NewMemory(), payments.Options{Delay: func() time.Duration { return handlerDelay }, Log: quiet})
	mw, err := idempotency.New(idempotency.Config{Store: b.store, Required: true, Log: quiet})
	if err != nil {
		return hammerResult{}, err
	}
	srv := httptest.NewServer(mw.Wrap(h))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	tenant := "demo-" + rand.Text()[:10] // a fresh scope: records of earlier runs live 24 h
	key := retry.NewKey()

	type answer struct {
		status   int
		replayed bool
		err      error
	}
	answers := make(chan answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			status, replayed, err := postPayment(ctx, client, srv.URL, tenant, key, `{"amount":100}`)
			answers <- answer{status, replayed, err}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	r := hammerResult{took: time.Since(t0)}
	close(answers)
	for a := range answers {
		switch {
		case a.err == nil && a.status == http.StatusCreated && a.replayed:
			r.replayed++
		case a.err == nil && a.status == http.StatusCreated:
			r.created++
		case a.err == nil && a.status == http.StatusConflict:
			r.conflict++
		default:
			r.other++
		}
	}
	stats := h.Stats()
	r.executions, r.written = stats.Runs, stats.Inserted

	calls := func() int64 { return b.store.calls.Swap(0) }
	r.rtUnit = "store calls"
	if b.rt != nil {
		calls, r.rtUnit = b.rt.Reset, "(go-redis hook)"
	}
	key = retry.NewKey()
	calls()
	if _, _, err := postPayment(ctx, client, srv.URL, tenant, key, `{"amount":100}`); err != nil {
		return r, err
	}
	r.firstRT = calls()
	if _, _, err := postPayment(ctx, client, srv.URL, tenant, key, `{"amount":100}`); err != nil {
		return r, err
	}
	r.replayRT = calls()
	return r, nil
}

// postPayment sends one POST /payments and reads the answer.
func postPayment(ctx context.Context, client *http.Client, base, tenant, key, body string) (status int, replayed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/payments", strings.NewReader(body))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(idempotency.HeaderKey, key)
	req.Header.Set(idempotency.HeaderTenant, tenant)
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get(idempotency.HeaderReplayed) == "true", err
}
