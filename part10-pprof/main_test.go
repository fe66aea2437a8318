package main

import (
	"bytes"
	"context"
	"flag"
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
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "cell %q", s)
	return n
}

// runMode runs one mode and returns its output.
func runMode(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), args, &out), out.String())
	return out.String()
}

func TestEndpointsMode(t *testing.T) {
	out := runMode(t, "-mode", "endpoints")
	assert.Equal(t, 1, strings.Count("\n"+out, "\n== "), "one section")
	assert.Contains(t, out, "/debug/pprof/ lists 10 endpoints: allocs, block, cmdline, goroutine, heap, mutex, profile, symbol, threadcreate, trace")
	for _, e := range grid {
		r := clitest.Row(t, out, "/debug/pprof/"+e.path)
		assert.Len(t, r, 5, "%q", r)
	}
	assert.Equal(t, "0", clitest.Row(t, out, "block")[1], "block profile off by default")
	assert.Equal(t, "0", clitest.Row(t, out, "mutex")[1], "mutex profile off by default")
	assert.Greater(t, atoi(t, clitest.Row(t, out, "block")[3]), 0, "block events once the rate is set")
	assert.Contains(t, out, "answers GET /debug/pprof/cmdline with 200")
	assert.Contains(t, out, "runtime metrics: goroutines=")
}

// Command-line mistakes are usage errors: a message and the usage on stderr,
// nothing on stdout, exit status 2.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-mode", "bogus"}, `unknown -mode "bogus"`},
		{[]string{"stray"}, `unexpected argument "stray" (the only subcommand is serve, and it comes first)`},
		{[]string{"-mode", "endpoints", "serve"}, `unexpected argument "serve"`},
		{[]string{"-block-rate", "-1"}, "-block-rate -1 is out of range 0..1000000000"},
		{[]string{"-mutex-fraction", "1000001"}, "-mutex-fraction 1000001 is out of range 0..1000000"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"serve", "extra"}, `serve: unexpected argument "extra"`},
		{[]string{"serve", "-addr", "0.0.0.0:6060"}, `serve: -addr: pprof address "0.0.0.0:6060" (0.0.0.0): not a loopback address`},
		{[]string{"serve", "-addr", ":6060"}, `serve: -addr: pprof address ":6060" (every interface): not a loopback address`},
		{[]string{"serve", "-addr", "6060"}, `serve: -addr: pprof address "6060": address 6060: missing port in address`},
		{[]string{"serve", "-metrics-every", "1ms"}, "-metrics-every 1ms is out of range: 0 or 100ms..1h"},
		{[]string{"serve", "-mode", "diagnose"}, "flag provided but not defined: -mode"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clitest.UsageError(t, "part10-pprof", run, tt.args, tt.msg)
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout)
		assert.ErrorIs(t, err, flag.ErrHelp)
		assert.Equal(t, 0, cli.Exit("part10-pprof", err, &stderr))
		assert.Empty(t, stderr.String())
		assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part10-pprof "), "the command a reader types")
		for _, m := range modes {
			assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String(), "-h lists mode %s with what it shows", m.Name)
		}
		for _, f := range []string{"-mode", "-block-rate", "-mutex-fraction", "-addr", "-allow-remote", "serve flags:"} {
			assert.Contains(t, stdout.String(), f)
		}
	}
}

// serveUntilCancel starts `serve` with args, waits for the line naming the
// pprof URL, and returns it with a stop function that plays Ctrl-C and
// returns run's error.
func serveUntilCancel(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := make(clitest.Lines, 64)
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), out) }()
	for {
		select {
		case line := <-out:
			if _, rest, ok := strings.Cut(line, "pprof on "); ok {
				url, _, _ := strings.Cut(rest, "/debug/pprof/")
				return url, func() error {
					cancel()
					for {
						select {
						case err := <-done:
							return err
						case <-out: // keep the writer unblocked
						case <-time.After(30 * time.Second):
							require.FailNow(t, "serve did not stop within 30 s of Ctrl-C")
						}
					}
				}
			}
		case err := <-done:
			cancel()
			require.FailNow(t, "serve exited early", "%v", err)
		case <-time.After(30 * time.Second):
			cancel()
			require.FailNow(t, "serve did not say where pprof listens")
		}
	}
}

// TestServeStopsOnCancel plays Ctrl-C: pprof answers, then run returns nil
// once its context ends, leaving no goroutine behind.
func TestServeStopsOnCancel(t *testing.T) {
	defer leakcheck.VerifyNone(t)
	url, stop := serveUntilCancel(t, "-addr", "127.0.0.1:0", "-metrics-every", "100ms")
	resp, err := http.Get(url + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NoError(t, stop())
}

// -allow-remote is the explicit way to serve on every interface.
func TestServeAllowRemote(t *testing.T) {
	url, stop := serveUntilCancel(t, "-addr", "0.0.0.0:0", "-allow-remote", "-metrics-every", "0")
	assert.Contains(t, url, "[::]:", "every interface")
	assert.NoError(t, stop())
}
