//go:build integration

package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// TestFaultRedisKilled kills the stack's Redis under the served API (the
// wiring `serve` uses) and restarts it: a fail-closed route answers 503 with
// Retry-After, a fail-open route keeps serving, no answer takes longer than
// the Redis client's short timeouts allow, and both recover without a
// restart of the API.
func TestFaultRedisKilled(t *testing.T) {
	stack.Require(t, stack.Redis)
	r, err := openRedis(t.Context(), "auto")
	require.NoError(t, err)
	t.Cleanup(r.close)
	require.Nil(t, r.mini, "the real Redis: %s", r.name)

	servers := map[string]*httptest.Server{}
	for _, fail := range []string{"closed", "open"} {
		o, err := parseServe([]string{"-algo", "gcra", "-limit", "100000", "-window", "1m", "-fail", fail})
		require.NoError(t, err)
		api, err := newAPI(o, r.client, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		servers[fail] = httptest.NewServer(api)
		t.Cleanup(servers[fail].Close)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(t require.TestingT, fail string) (int, string) { // t: the test, or an EventuallyWithT tick
		start := time.Now()
		resp, err := client.Get(servers[fail].URL + "/api/hello")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Less(t, time.Since(start), 5*time.Second, "bounded by the Redis client's timeouts, not the client's 30 s")
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	expect := func(phase string, closed, open int) {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			code, _ := get(c, "closed")
			assert.Equal(c, closed, code, "%s: fail-closed route", phase)
			code, _ = get(c, "open")
			assert.Equal(c, open, code, "%s: fail-open route", phase)
		}, 30*time.Second, 50*time.Millisecond)
	}

	expect("before", http.StatusOK, http.StatusOK)
	stack.Kill(t, "redis")
	expect("down", http.StatusServiceUnavailable, http.StatusOK)
	statuses := map[string]int{}
	for range 20 {
		code, retry := get(t, "closed")
		statuses[fmt.Sprint(code, " Retry-After ", retry)]++
		code, _ = get(t, "open")
		statuses[fmt.Sprint("open ", code)]++
	}
	assert.Equal(t, map[string]int{"503 Retry-After 1": 20, "open 200": 20}, statuses, "every request while Redis is down")
	stack.Restart(t, "redis")
	expect("after", http.StatusOK, http.StatusOK)
}
