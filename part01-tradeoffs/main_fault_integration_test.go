//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/httpapi"
)

// answer is one request the fault test sent, and what came back.
type answer struct {
	phase      string // "before" Kill, "down" until Restart returned, "after" it
	method     string
	status     int
	retryAfter string
	took       time.Duration
	err        error
}

// TestFaultPostgresKilledUnderRequests kills the stack's PostgreSQL while
// clients keep sending GETs and PUTs through the real wiring (openAPI, as
// `go run ./part01-tradeoffs -store postgres` uses it), then restarts it. An
// outage must read as 503 with Retry-After, never 500; no request may wait
// much longer than the handler's timeout, far below the clients' own 30 s
// deadline; and once PostgreSQL is back, both methods succeed again without
// restarting the API.
func TestFaultPostgresKilledUnderRequests(t *testing.T) {
	stack.Require(t, stack.Postgres)
	var storeLine bytes.Buffer
	api, closeStore, err := openAPI(t.Context(), &storeLine, "postgres", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(closeStore)
	require.Contains(t, storeLine.String(), "PostgreSQL adapter")
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { deleteFaultUsers(t) })
	client := &http.Client{Timeout: 30 * time.Second} // the clients' deadline

	var (
		mu      sync.Mutex
		phase   = "before"
		answers []answer
	)
	count := func(ph, method string, status int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range answers {
			if a.phase == ph && (method == "" || a.method == method) && a.status == status {
				n++
			}
		}
		return n
	}

	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				method, body := "GET", "" // after a PUT of the same user: never a 404
				if i%2 == 0 {
					method, body = "PUT", fmt.Sprintf(`{"name":"Fault %d","email":"fault%d@example.com"}`, i, c)
				}
				mu.Lock()
				a := answer{phase: phase, method: method}
				mu.Unlock()
				start := time.Now()
				req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("%s/users/part01-fault-%d", srv.URL, c), strings.NewReader(body))
				var resp *http.Response
				if err == nil {
					resp, err = client.Do(req)
				}
				a.took, a.err = time.Since(start), err
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
				}
				if ctx.Err() != nil {
					return // cancelled by the test's end, not an answer
				}
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	t.Cleanup(func() { stop(); wg.Wait() })

	for _, step := range []struct {
		fault    func()
		phase    string
		status   int
		deadline time.Duration
		what     string
	}{
		{nil, "before", http.StatusOK, 10 * time.Second, "PUTs and GETs succeed before the fault"},
		{func() { stack.Kill(t, "postgres") }, "down", http.StatusServiceUnavailable, 15 * time.Second, "503s while PostgreSQL is down"},
		{func() { stack.Restart(t, "postgres") }, "after", http.StatusOK, 30 * time.Second, "the API recovers without a restart"},
	} {
		if step.fault != nil {
			step.fault()
		}
		mu.Lock()
		phase = step.phase
		mu.Unlock()
		require.Eventually(t, func() bool {
			return count(step.phase, "PUT", step.status) >= 10 && count(step.phase, "GET", step.status) >= 10
		}, step.deadline, 20*time.Millisecond, step.what)
	}
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	byStatus := map[string]int{}
	var slowest time.Duration
	for _, a := range answers {
		slowest = max(slowest, a.took)
		byStatus[fmt.Sprintf("%s %s %d", a.phase, a.method, a.status)]++
		require.NoError(t, a.err, "the API itself stayed up")
		assert.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, a.status, "%s → %d during %q: an outage is never a 500", a.method, a.status, a.phase)
		if a.status == http.StatusServiceUnavailable {
			assert.Equal(t, "1", a.retryAfter, "a 503 says when to retry")
		}
		assert.Less(t, a.took, httpapi.DefaultTimeout+2*time.Second, "%s took %v: bounded by the handler's timeout, not the client's deadline", a.method, a.took)
	}
	t.Logf("answers by phase, method and status: %v; slowest %v", byStatus, slowest)
}

// deleteFaultUsers removes the rows the fault test wrote: the database is
// shared with other chapters and later runs.
func deleteFaultUsers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, stack.DatabaseURL())
	if !assert.NoError(t, err, "cleanup") {
		return
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DELETE FROM part01.users WHERE id LIKE 'part01-fault-%'`)
	assert.NoError(t, err, "cleanup")
}
