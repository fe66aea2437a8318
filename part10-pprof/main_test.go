package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/internal/cli/clitest"
	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part10-pprof/gclab"
	"github.com/sysdesign-masterclass/golang/part10-pprof/overhead"
)

// TestMain lets -mode gc run this test binary as its child workload.
func TestMain(m *testing.M) {
	gclab.MaybeChild()
	leakcheck.VerifyTestMain(m)
}

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

func TestDiagnoseMode(t *testing.T) {
	out := runMode(t, "-mode", "diagnose", "-requests", "300", "-slow", "30", "-query-bytes", "16384")
	assert.Equal(t, 1, strings.Count("\n"+out, "\n== "), "one section")
	leaks := clitest.Row(t, out, "leaks on")
	fixed := clitest.Row(t, out, "fixed")
	require.Len(t, leaks, 9, "%q", leaks)
	require.Len(t, fixed, 9, "%q", fixed)
	// The 30 slow requests time out unless a handler runs 150 ms late, when
	// its select may take the answer instead (TestLeaksGrowWithTheLoad holds
	// the backend for an exact count); the leak is one goroutine per 504.
	assert.Positive(t, atoi(t, leaks[2]), "the slow requests time out")
	assert.Equal(t, "0", fixed[5], "none on the fixed service\n%s", out)
	heap := rowsAfter(t, out, "growth    function to fix")
	require.NotEmpty(t, heap)
	assert.Regexp(t, `^\+[\d.]+ MiB +leaky\.\(\*Service\)\.auditLeaky +strings\.\(\*Builder\)\.WriteString$`, heap[0], "the planted heap leak, named first")
	g := rowsAfter(t, out, "growth  started in")
	require.NotEmpty(t, g)
	m := regexp.MustCompile(`^\+(\d+) +leaky\.\(\*Service\)\.lookupLeaky\.func1 +runtime\.chansend1$`).FindStringSubmatch(g[0])
	require.NotNil(t, m, "the planted goroutine leak, named first: %q", g[0])
	assert.Equal(t, leaks[2], m[1], "one goroutine per timed-out request")
	// Besides the two planted leaks, the heap diff may list the queries the
	// leaked goroutines keep (parsed into a string in search): 30 of 16 KiB,
	// near the 2 MiB threshold, so heap sampling decides whether they count.
	for _, row := range heap[1:] {
		assert.Regexp(t, `^\+[\d.]+ MiB +leaky\.\(\*Service\)\.search `, row, "only memory the leaked goroutines keep")
	}
	assert.Len(t, g, 1, "one goroutine finding")
	assert.Equal(t, strconv.Itoa(len(heap)+len(g)), leaks[5], "the findings column counts the rows\n%s", out)
	assert.Contains(t, out, "fixed service: no finding in either diff.")
}

// rowsAfter returns the lines after the one starting with header, up to the
// next blank line.
func rowsAfter(t *testing.T, out, header string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "\n"+header)
	require.True(t, ok, "no %q in:\n%s", header, out)
	_, rest, _ = strings.Cut(rest, "\n")
	body, _, _ := strings.Cut(rest, "\n\n")
	return strings.Split(strings.TrimSpace(body), "\n")
}

// -mode gc runs the workload in this test binary under every setting, and
// -record/-replay reproduce the same table without running anything.
func TestGCMode(t *testing.T) {
	dir := t.TempDir()
	record, chart := filepath.Join(dir, "runs.txt"), filepath.Join(dir, "heap.svg")
	out := runMode(t, "-mode", "gc", "-gc-alloc", "64", "-gc-live", "8", "-record", record)
	assert.Equal(t, 1, strings.Count("\n"+out, "\n== "), "one section")
	def := clitest.Row(t, out, "GOGC=100 GOMEMLIMIT=off")
	g200 := clitest.Row(t, out, "GOGC=200 GOMEMLIMIT=off")
	require.Len(t, def, 10, "%q", def)
	require.Len(t, g200, 10, "%q", g200)
	assert.Less(t, atoi(t, g200[1]), atoi(t, def[1]), "GOGC=200 collects less often")
	for _, s := range []string{"GOGC=50 GOMEMLIMIT=off", "GOGC=off GOMEMLIMIT=24MiB", "GOGC=100 GOMEMLIMIT=12MiB", "GOGC=100 GOMEMLIMIT=4MiB"} {
		assert.Len(t, clitest.Row(t, out, s), 10, s)
	}
	assert.Contains(t, out, "GOMEMLIMIT is soft")
	assert.Regexp(t, `the next line's goal, \d+ MB, is this live heap \+ 100%`, out)
	assert.Contains(t, out, "wrote "+record)

	replay := runMode(t, "-mode", "gc", "-replay", record, "-chart", chart)
	assert.Equal(t, clitest.Row(t, out, "GOGC=100 GOMEMLIMIT=4MiB"), clitest.Row(t, replay, "GOGC=100 GOMEMLIMIT=4MiB"), "the replay prints the recorded run")
	assert.Contains(t, replay, "recorded in "+record+": measured on go")
	svg, err := os.ReadFile(chart)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(svg, []byte("<svg ")))
	again := filepath.Join(dir, "again.svg")
	runMode(t, "-mode", "gc", "-replay", record, "-chart", again)
	svg2, err := os.ReadFile(again)
	require.NoError(t, err)
	assert.Equal(t, svg, svg2, "the chart is a function of the record")
}

// The committed chart is what go generate makes from the committed record:
// make generate leaves no diff.
func TestCommittedChartIsUpToDate(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "gc-heap.svg")
	out := runMode(t, "-mode", "gc", "-replay", filepath.Join("testdata", "gc-runs.txt"), "-chart", chart)
	want, err := os.ReadFile("gc-heap.svg")
	require.NoError(t, err)
	got, err := os.ReadFile(chart)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "run go generate ./part10-pprof")
	assert.Contains(t, out, "GOMEMLIMIT is soft")
}

// -mode overhead measures every profiler; the test checks the table, not
// the timings.
func TestOverheadMode(t *testing.T) {
	out := runMode(t, "-mode", "overhead", "-overhead-time", "20ms", "-rounds", "2")
	assert.Equal(t, 1, strings.Count("\n"+out, "\n== "), "one section")
	assert.Equal(t, []string{"-", "-", "-"}, clitest.Row(t, out, "none")[2:5])
	for _, p := range overhead.Profilers[1:] {
		r := clitest.Row(t, out, p.Name)
		require.GreaterOrEqual(t, len(r), 6, "%q", r)
		assert.Regexp(t, `^\d+\.\d$`, r[1], "%s: CPU µs per request", p.Name)
		assert.Regexp(t, `^[-+]\d+\.\d%$`, r[2], p.Name)
		assert.Regexp(t, `^[-+]\d+\.\d% \.\. [-+]\d+\.\d%$`, r[3], p.Name)
		assert.Regexp(t, `^[-+]\d+\.\d%$`, r[4], p.Name)
	}
	assert.Contains(t, clitest.Row(t, out, "trace")[5], "~10–15%")
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
		{[]string{"serve", "-metrics-every", "1ms"}, "-metrics-every 1ms is out of range 100ms..1h0m0s (or 0: never)"},
		{[]string{"-overhead-time", "1ms"}, "-overhead-time 1ms is out of range 10ms..1m0s"},
		{[]string{"-rounds", "0"}, "-rounds 0 is out of range 1..100"},
		{[]string{"serve", "-mode", "diagnose"}, "flag provided but not defined: -mode"},
		{[]string{"serve", "-goroutines", "sometimes"}, `invalid value "sometimes" for flag -goroutines: want leak | article-fix | fixed`},
		{[]string{"serve", "-heap", "big"}, `invalid value "big" for flag -heap: want leak | fixed`},
		{[]string{"-requests", "99"}, "-requests 99 is out of range 100..1000000"},
		{[]string{"-requests", "200", "-slow", "201"}, "-slow 201 is out of range 0..200"},
		{[]string{"-query-bytes", "8"}, "-query-bytes 8 is out of range 16..65536"},
		{[]string{"-gc-alloc", "0"}, "-gc-alloc 0 is out of range 1..65536"},
		{[]string{"-gc-live", "1"}, "-gc-live 1 is out of range 2..16384"},
		{[]string{"-mode", "diagnose", "-chart", "x.svg"}, "-record, -replay and -chart belong to -mode gc, not -mode diagnose"},
		{[]string{"-mode", "gc", "-record", "a", "-replay", "b"}, "-record and -replay exclude each other"},
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
		for _, f := range []string{"-mode", "-block-rate", "-mutex-fraction", "-requests", "-slow", "-query-bytes", "-gc-alloc", "-gc-live", "-record", "-replay", "-chart", "-overhead-time", "-rounds", "-addr", "-allow-remote", "-app-addr", "-goroutines", "-heap", "serve flags:"} {
			assert.Contains(t, stdout.String(), f)
		}
	}
}

// serveUntilCancel starts `serve` with args, waits for its first line, and
// returns the service's and pprof's URLs with a stop function that plays
// Ctrl-C and returns run's error.
func serveUntilCancel(t *testing.T, args ...string) (string, string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := make(clitest.Lines, 64)
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), out) }()
	stop := func() error {
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
	for {
		select {
		case line := <-out:
			m := serving.FindStringSubmatch(line)
			if m != nil {
				return m[1], m[2], stop
			}
		case err := <-done:
			cancel()
			require.FailNow(t, "serve exited early", "%v", err)
		case <-time.After(30 * time.Second):
			cancel()
			require.FailNow(t, "serve did not say where it listens")
		}
	}
}

var serving = regexp.MustCompile(`^search service on (\S+) .*; pprof on (\S+)/debug/pprof/`)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestServeStopsOnCancel plays Ctrl-C: the service and pprof answer, then
// run returns nil once its context ends, leaving no goroutine behind.
func TestServeStopsOnCancel(t *testing.T) {
	defer leakcheck.VerifyNone(t)
	app, pp, stop := serveUntilCancel(t, "-addr", "127.0.0.1:0", "-app-addr", "127.0.0.1:0", "-metrics-every", "100ms")
	code, body := get(t, app+"/api/search?q=shoes")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"query":"shoes"`)
	code, _ = get(t, app+"/api/search?q=slow:shoes")
	assert.Equal(t, http.StatusGatewayTimeout, code, "the planted leak's request")
	code, _ = get(t, app+"/debug/pprof/")
	assert.Equal(t, http.StatusNotFound, code, "no pprof on the service's port")
	code, body = get(t, pp+"/debug/pprof/goroutine?debug=2")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "lookupLeaky", "serve runs the leaky lookup by default")
	code, body = get(t, pp+"/debug/runtime")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutines=")
	assert.NoError(t, stop())
}

// -allow-remote is the explicit way to serve pprof on every interface.
func TestServeAllowRemote(t *testing.T) {
	_, pp, stop := serveUntilCancel(t, "-addr", "0.0.0.0:0", "-allow-remote", "-app-addr", "127.0.0.1:0", "-metrics-every", "0", "-goroutines", "fixed", "-heap", "fixed")
	assert.Contains(t, pp, "[::]:", "every interface")
	assert.NoError(t, stop())
}

// A taken port is an error (exit 1), not a silent server without pprof.
func TestServeReportsATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = run(t.Context(), []string{"serve", "-addr", ln.Addr().String(), "-app-addr", "127.0.0.1:0"}, io.Discard)
	assert.ErrorContains(t, err, "address already in use")
	assert.Equal(t, 1, cli.Exit("part10-pprof", err, io.Discard))
	err = run(t.Context(), []string{"serve", "-addr", "127.0.0.1:0", "-app-addr", ln.Addr().String()}, io.Discard)
	assert.ErrorContains(t, err, "service: listen tcp")
}
