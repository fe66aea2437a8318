package main

import (
	"bytes"
	"context"
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
)

// quick keeps the measured sections short; the defaults are for readers.
var quick = []string{"-store", "memory", "-requests", "200", "-ops", "3000"}

// runMode runs one mode with no services and returns its output.
func runMode(t *testing.T, mode string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), append([]string{"-mode", mode}, quick...), &out), out.String())
	return out.String()
}

// Every mode runs with no services and prints the lines a reader checks
// against the article.
func TestEveryModeWithoutServices(t *testing.T) {
	for _, tt := range []struct {
		mode     string
		sections int
		want     []string
		check    func(t *testing.T, out string)
	}{
		{"tradeoff", 1, []string{"performance alone needs 10 nodes; with exactly 10 the peak is served 99.00% of the time"}, func(t *testing.T, out string) {
			assert.Equal(t, []string{"99.900%", "11", "1"}, clitest.Row(t, out, "99.900%")[:3])
			assert.Equal(t, []string{"99.999%", "12", "2"}, clitest.Row(t, out, "99.999%")[:3], "banking's five nines: two spare nodes")
			assert.Equal(t, "5", clitest.Row(t, out, "99.999%")[5], "failed requests/s five nines allow at 500k RPS")
		}},
		{"availability", 3, []string{
			`"adds ~2.6 hours of downtime/year" (10.1× too small)`,
			"99.9999%", "31.5 s",
			"99.989998%",           // per-service need for 99.95% over 5
			"10,000 of 10,000,000", // error budget in requests
			"99.5% (−0.4 pt)",      // the FAQ's SLA under a 99.9% SLO
			`the FAQ's SLI "success rate = 99.95%" burns the 99.9% budget at 0.5×`,
			"dominant: system/dns",
		}, func(t *testing.T, out string) {
			assert.Equal(t, []string{"99.7003%", "26.25 h", "2.19 h"}, clitest.Row(t, out, "3 × 99.9% in series")[1:4], "per year and per month: the erratum's two figures")
		}},
		{"partition", 2, []string{
			"STALE: the last acknowledged write was v1",
			"conflict on x: kept v2 (#2@n2), lost v1 (#2@n1)",
			"no quorum",
		}, func(t *testing.T, out string) {
			for _, w := range []string{"ONE", "QUORUM", "ALL"} {
				for _, r := range []string{"ONE", "QUORUM", "ALL"} {
					cells := clitest.Row(t, out, w, r)
					require.Len(t, cells, 7)
					if strings.Contains(cells[2], ">") {
						assert.Equal(t, "0.00%", cells[3], "W=%s R=%s: R + W > N never reads stale", w, r)
					} else {
						assert.NotEqual(t, "0.00%", cells[3], "W=%s R=%s: R + W ≤ N reads stale under lag", w, r)
					}
				}
			}
			q := clitest.Row(t, out, "QUORUM", "QUORUM")
			assert.Equal(t, "0.00%", q[6], "QUORUM is never stale, even under a partition")
			assert.Equal(t, []string{"100.00%", "100.00%"}, clitest.Row(t, out, "ALL", "ALL")[4:6], "ALL refuses everything under a partition")
			assert.Equal(t, []string{"0.00%", "0.00%"}, clitest.Row(t, out, "ONE", "ONE")[4:6], "ONE always answers")
		}},
		{"pacelc", 1, []string{"PA/EL", "PC/EC", "Spanner", "Cassandra at QUORUM/QUORUM gives PC/EC: the label is a configuration"}, func(t *testing.T, out string) {
			for _, sys := range []string{"Cassandra / ScyllaDB", "DynamoDB", "Spanner", "MongoDB", "OceanBase"} {
				cells := clitest.Row(t, out, sys)
				require.GreaterOrEqual(t, len(cells), 4, sys)
				assert.Equal(t, cells[1], cells[3], "%s: the label measured from its levels is the article's", sys)
			}
			var prev float64
			for _, l := range []string{"ONE", "QUORUM", "ALL"} {
				cells := clitest.Row(t, out, l, l)
				require.Len(t, cells, 8)
				p99, err := strconv.ParseFloat(strings.TrimSuffix(cells[5], " ms"), 64)
				require.NoError(t, err, cells[5])
				assert.Greater(t, p99, prev, "%s/%s: read p99 grows with the level (the else branch's price)", l, l)
				prev = p99
			}
		}},
		{"users", 1, []string{
			"storage: in-memory adapter (-store memory)",
			`{"id":"demo-ada","name":"Ada Lovelace","email":"ada@example.com"}`,
			"RFC 5321 allows at most 254",
			"SLI, measured in this run: 200 requests",
		}, func(t *testing.T, out string) {
			for _, status := range []string{"200", "404", "400", "405"} {
				assert.Regexp(t, `\s`+status+`\s`, out, "a %s response", status)
			}
			assert.Regexp(t, `latency over the whole run: p50 [\d.]+ ms, p99 [\d.]+ ms`, out)
			assert.Regexp(t, `SLI p99 per 1m0s window .*: the run \(.+\) fits in one window, p99 [\d.]+ ms`, out)
			assert.Regexp(t, `SLO "99.9% of requests < 150 ms": \d+\.\d{3}% good`, out)
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			out := runMode(t, tt.mode)
			assert.Equal(t, tt.sections, strings.Count("\n"+out, "\n== "), "sections printed")
			for _, want := range tt.want {
				assert.Contains(t, out, want)
			}
			if tt.mode != "users" {
				assert.NotContains(t, out, "storage:", "only -mode users opens a store")
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

// The default runs every mode in the article's order and exits 0.
func TestRunAllInTheArticlesOrder(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), quick, &out))
	last := -1
	for _, title := range []string{"3D trade-off", "Composite availability", "CAP (Gilbert & Lynch)", "ONE / QUORUM / ALL", "PACELC", "Clean Architecture"} {
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
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"-mode", "users", "extra"}, `unexpected argument "extra"`},
		{[]string{"-store", "nope", "-mode", "users"}, `unknown -store "nope"`},
		{[]string{"-requests", "0"}, "-requests 0 is out of range"},
		{[]string{"-requests", "-5"}, "-requests -5 is out of range"},
		{[]string{"-ops", "1000001"}, "-ops 1000001 is out of range"},
		{[]string{"-ops", "many"}, `invalid value "many" for flag -ops`},
		{[]string{"-sli-window", "0s"}, "-sli-window 0s is out of range 1ms..24h"},
		{[]string{"-sli-window", "25h"}, "-sli-window 25h0m0s is out of range 1ms..24h"},
		{[]string{"-serve", ":0", "-mode", "users"}, "-serve runs the API instead of the scenarios; drop -mode"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clitest.UsageError(t, "part01-tradeoffs", run, tt.args, tt.msg)
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-h"}, &stdout)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, cli.Exit("part01-tradeoffs", err, &stderr))
	assert.Empty(t, stderr.String())
	assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part01-tradeoffs "), "the command a reader types, not a build-cache path")
	for _, m := range modes {
		assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String(), "-h lists mode %s with what it shows", m.Name)
	}
	for _, f := range []string{"-mode", "-store", "-serve", "-requests", "-ops", "-sli-window"} {
		assert.Contains(t, stdout.String(), f)
	}
}

// TestServeStopsOnCancel plays Ctrl-C: the server answers, then returns nil
// once its context ends, leaving no goroutine behind.
func TestServeStopsOnCancel(t *testing.T) {
	defer leakcheck.VerifyNone(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(clitest.Lines, 16)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-serve", "127.0.0.1:0", "-store", "memory"}, out) }()

	var addr string
	for addr == "" {
		select {
		case line := <-out:
			if _, rest, ok := strings.Cut(line, "serving the users API on "); ok {
				addr, _, _ = strings.Cut(rest, " ")
			}
		case err := <-done:
			require.FailNow(t, "server exited early", "%v", err)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "server did not say where it listens")
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequest("PUT", addr+"/users/ada", strings.NewReader(`{"name":"Ada","email":"ada@example.com"}`))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "PUT via the served API")
	resp, err = client.Get(addr + "/users/ada")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `"name":"Ada"`)

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
