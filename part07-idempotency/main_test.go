package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/internal/cli/clitest"
	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// quick keeps the experiments short; the defaults are for readers.
var quick = []string{"-store", "memory", "-requests", "50", "-clients", "5"}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "cell %q", s)
	return n
}

// checkConcurrent checks a store's row of -mode concurrent: one execution,
// one payment, every answer a 201 or a 409, 2 round trips then 1.
func checkConcurrent(t *testing.T, out, store string, n int) {
	t.Helper()
	c := clitest.Row(t, out, store)
	require.GreaterOrEqual(t, len(c), 9, "%q", c)
	assert.Equal(t, []string{"1", "1", "1"}, c[1:4], "%s: executions, payments written, 201 created", store)
	assert.Equal(t, n, atoi(t, c[3])+atoi(t, c[4])+atoi(t, c[5]), "%s: created + replayed + in progress", store)
	assert.Equal(t, "0", c[6], "%s: other answers", store)
	assert.True(t, strings.HasPrefix(c[7], "2 / 1 "), "%s: round trips %q", store, c[7])
}

// Every mode runs with no services and prints the lines a reader checks
// against the article.
func TestEveryModeWithoutServices(t *testing.T) {
	for _, tt := range []struct {
		mode  string
		check func(t *testing.T, out string)
	}{
		{"concurrent", func(t *testing.T, out string) {
			checkConcurrent(t, out, "memory", 50)
			assert.Contains(t, out, "created + replayed + in progress = 50")
		}},
		{"storm", func(t *testing.T, out string) {
			bare := clitest.Row(t, out, "no idempotency (the bare handler)")
			mw := clitest.Row(t, out, "Idempotency-Key middleware (memory)")
			require.Len(t, bare, 13)
			require.Len(t, mw, 13)
			assert.Equal(t, "-", bare[11], "no store without the middleware")
			assert.GreaterOrEqual(t, atoi(t, mw[11]), 5*2, "a claim and a record per client at least, a look-up per retry")
			assert.Greater(t, atoi(t, bare[9]), 5, "without the key every timed-out attempt paid: %q", bare)
			assert.Equal(t, atoi(t, bare[9])-5, atoi(t, bare[10]), "double charges = payments - clients")
			assert.Equal(t, []string{"5", "5", "0"}, mw[8:11], "handler runs, payments, double charges with the key")
			assert.Equal(t, "0", mw[7], "nobody gave up")
			assert.Equal(t, 5, atoi(t, mw[4])+atoi(t, mw[5]), "every client got its 201, first or replayed")
		}},
		{"backoff", func(t *testing.T, out string) {
			for _, n := range []string{"5", "6", "7"} {
				r := clitest.Row(t, out, n)
				assert.Equal(t, []string{"2000 ms .. 2000 ms", "1", "1000"}, r[1:4], "article at retry %s: everyone at Tmax", n)
				assert.Greater(t, atoi(t, r[5]), 990, "full jitter at retry %s stays spread", n)
			}
			assert.Contains(t, out, "at n = 37, Tb·2^n = 1.37e+19 ns")
			assert.Contains(t, out, "retry.Backoff.Cap(37) = 2s")
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), append([]string{"-mode", tt.mode}, quick...), &out))
			assert.Equal(t, 1, strings.Count("\n"+out.String(), "\n== "), "one section")
			tt.check(t, out.String())
		})
	}
}

// With -store auto and no stack, miniredis stands in for Redis and says so,
// and PostgreSQL is left out with a line saying how to include it.
func TestAutoUsesStandInsWithoutServices(t *testing.T) {
	t.Setenv(stack.EnvRedis, "127.0.0.1:1")
	t.Setenv(stack.EnvPostgres, "postgres://u:p@127.0.0.1:1/db")
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-mode", "concurrent", "-requests", "20"}, &out))
	checkConcurrent(t, out.String(), "memory", 20)
	checkConcurrent(t, out.String(), "Redis", 20)
	assert.Contains(t, out.String(), "miniredis stand-in (the stack's Redis is not running; `make up` or set REDIS_ADDR to use it)")
	assert.Contains(t, out.String(), "PostgreSQL: not reachable")
	assert.Contains(t, out.String(), "run `make up` or set DATABASE_URL to include it")
}

// The default runs every mode in order and exits 0.
func TestRunAll(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), quick, &out))
	last := -1
	for _, title := range []string{"concurrent requests, one Idempotency-Key", "Retry storm", "Backoff"} {
		i := strings.Index(out.String(), title)
		require.Greater(t, i, last, "%q comes after the previous section", title)
		last = i
	}
}

// Command-line mistakes are usage errors: a message and the usage on stderr,
// nothing on stdout, exit status 2.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-mode", "bogus"}, `unknown -mode "bogus"`},
		{[]string{"stray"}, `unexpected argument "stray" (the only subcommand is serve, and it comes first)`},
		{[]string{"-mode", "storm", "serve"}, `unexpected argument "serve"`},
		{[]string{"-store", "mongo"}, `unknown -store "mongo"`},
		{[]string{"-requests", "1"}, "-requests 1 is out of range 2..10000"},
		{[]string{"-requests", "10001"}, "-requests 10001 is out of range"},
		{[]string{"-clients", "0"}, "-clients 0 is out of range 1..1000"},
		{[]string{"-clients", "many"}, `invalid value "many" for flag -clients`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"serve", "extra"}, `serve: unexpected argument "extra"`},
		{[]string{"serve", "-addr", ""}, "serve: -addr is empty"},
		{[]string{"serve", "-store", "disk"}, `unknown -store "disk"`},
		{[]string{"serve", "-mode", "storm"}, "flag provided but not defined: -mode"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clitest.UsageError(t, "part07-idempotency", run, tt.args, tt.msg)
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout)
		assert.ErrorIs(t, err, flag.ErrHelp)
		assert.Equal(t, 0, cli.Exit("part07-idempotency", err, &stderr))
		assert.Empty(t, stderr.String())
		assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part07-idempotency "), "the command a reader types, not a build-cache path")
		for _, m := range modes {
			assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String(), "-h lists mode %s with what it shows", m.Name)
		}
		for _, f := range []string{"-mode", "-store", "-requests", "-clients", "-addr", "serve flags:"} {
			assert.Contains(t, stdout.String(), f)
		}
	}
}

// An explicit store that is not running is a failure (exit 1), not a
// silent stand-in.
func TestExplicitStoreMustBeReachable(t *testing.T) {
	t.Setenv(stack.EnvRedis, "127.0.0.1:1")
	err := run(t.Context(), []string{"-mode", "storm", "-store", "redis"}, io.Discard)
	assert.ErrorContains(t, err, "redis: redis at 127.0.0.1:1")
	assert.Equal(t, 1, cli.Exit("part07-idempotency", err, io.Discard))
}

// TestServeStopsOnCancel plays Ctrl-C: the payments API answers (a payment,
// its replay, the list, a refused request), then run returns nil once its
// context ends, leaving no goroutine behind.
func TestServeStopsOnCancel(t *testing.T) {
	defer leakcheck.VerifyNone(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(clitest.Lines, 16)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-store", "memory"}, out) }()

	var base string
	for base == "" {
		select {
		case line := <-out:
			if _, rest, ok := strings.Cut(line, "serving the payments API on "); ok {
				base, _, _ = strings.Cut(rest, " ")
			}
		case err := <-done:
			require.FailNow(t, "server exited early", "%v", err)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "server did not say where it listens")
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	type reply struct {
		StatusCode int
		Header     http.Header
	}
	send := func(method, key, body string) (reply, string) {
		req, err := http.NewRequest(method, base+"/payments", strings.NewReader(body))
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		req.Header.Set("X-Tenant-ID", "acme")
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return reply{resp.StatusCode, resp.Header}, string(b)
	}
	first, body := send("POST", "order-1", `{"amount":100}`)
	require.Equal(t, http.StatusCreated, first.StatusCode, body)
	again, body2 := send("POST", "order-1", `{"amount":100}`)
	assert.Equal(t, http.StatusCreated, again.StatusCode)
	assert.Equal(t, "true", again.Header.Get("X-Idempotent-Replayed"))
	assert.Equal(t, body, body2)
	resp, _ := send("POST", "order-1", `{"amount":250}`)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	resp, _ = send("POST", "", `{"amount":100}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "the key is required")
	resp, _ = send("POST", "order-2", `{"amount":-1}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, list := send("GET", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got struct {
		Payments []struct {
			Key    string `json:"idempotency_key"`
			Amount int64
		}
	}
	require.NoError(t, json.Unmarshal([]byte(list), &got))
	require.Len(t, got.Payments, 1, "order-1 once; order-2 was refused")
	assert.Equal(t, "order-1", got.Payments[0].Key)
	assert.Equal(t, int64(100), got.Payments[0].Amount)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "serve after cancel")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "serve did not stop after cancel")
	}
	for {
		select {
		case line := <-out:
			if strings.Contains(line, "stopped") {
				return
			}
		default:
			require.FailNow(t, `serve did not print "stopped"`)
		}
	}
}
