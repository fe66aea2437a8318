package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// quick keeps the loopback measurements short; the defaults are for readers.
var quick = []string{"-requests", "200", "-redis", "miniredis"}

// runMode runs one mode with no services and returns its output.
func runMode(t *testing.T, mode string, extra ...string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), append(append([]string{"-mode", mode}, quick...), extra...), &out), out.String())
	return out.String()
}

// millis parses "12.3 ms" or "1.2 s".
func millis(t *testing.T, cell string) float64 {
	t.Helper()
	num, unit, ok := strings.Cut(cell, " ")
	require.True(t, ok, cell)
	v, err := strconv.ParseFloat(num, 64)
	require.NoError(t, err, cell)
	if unit == "s" {
		v *= 1000
	}
	return v
}

// Every mode runs with no services and prints the lines a reader checks
// against the article.
func TestEveryModeWithoutServices(t *testing.T) {
	defer leakcheck.VerifyNone(t)
	for _, tt := range []struct {
		mode     string
		sections int
		want     []string
		check    func(t *testing.T, out string)
	}{
		{"l4l7", 1, []string{`"~0.1–0.3ms", "millions of connections/s"`, `"~0.5–2ms", "hundreds of thousands/s"`}, func(t *testing.T, out string) {
			for _, p := range []string{"direct", "L4 (TCP, splice)", "L7 (httputil.ReverseProxy)"} {
				cells := clitest.Row(t, out, p)
				require.Len(t, cells, 7)
				assert.Positive(t, millis(t, cells[1]), p)
			}
			m := regexp.MustCompile(`only the first crosses the balancer: ([\d.]+)% of the payload bytes`).FindStringSubmatch(out)
			require.NotNil(t, m, out)
			share, _ := strconv.ParseFloat(m[1], 64)
			assert.Less(t, share, 1.0, "GET requests are a sliver of 100 KiB responses")
		}},
		{"distribution", 1, []string{"200 requests through the L7 proxy"}, func(t *testing.T, out string) {
			assert.Equal(t, []string{"50", "50", "50", "50"}, clitest.Row(t, out, "round robin")[1:5])
			assert.Equal(t, []string{"100", "50", "25", "25"}, clitest.Row(t, out, "smooth weighted RR, weights 4:2:1:1")[1:5])
			assert.Equal(t, []string{"50", "50", "50", "50"}, clitest.Row(t, out, "least connections")[1:5])
			assert.Equal(t, "yes", clitest.Row(t, out, "consistent hash on X-User-ID, 40 users")[5])
			cookie := clitest.Row(t, out, "cookie SERVERID, 40 users")
			assert.Equal(t, []string{"50", "50", "50", "50", "yes"}, cookie[1:6])
			nat := clitest.Row(t, out, "IP hash, 40 users behind one NAT")[1:5]
			slices.Sort(nat)
			assert.Equal(t, []string{"0", "0", "0", "200"}, nat, "one address, one backend")
			p2c := 0
			for _, c := range clitest.Row(t, out, "P2C")[1:5] {
				n, err := strconv.Atoi(c)
				require.NoError(t, err)
				p2c += n
			}
			assert.Equal(t, 200, p2c)
			assert.Regexp(t, `the ring moves (1\d|2\d)\.\d% of 10,000 user keys, hash mod N moves (7\d|8\d)\.\d%`, out)
		}},
		{"failover", 1, []string{"kill b2", "b2 out of the pool: a refused connection ejected it for 200ms", "b2 ejected by the health checker", "restart b2", "b2 readmitted by the health checker"}, func(t *testing.T, out string) {
			for _, m := range []string{"GET", "PUT"} {
				cells := clitest.Row(t, out, m)
				assert.Equal(t, "0", cells[3], "%s: none lost", m)
				assert.Equal(t, cells[1], cells[2], "%s: every one answered 200", m)
			}
			assert.Regexp(t, `b2 served [1-9]\d* requests after readmission`, out)
			assert.Regexp(t, `0 retries refused by the budget`, out)
		}},
		{"slow", 1, []string{"simulated (Poisson arrivals", "on loopback through the L7 proxy"}, func(t *testing.T, out string) {
			rr := millis(t, clitest.Row(t, out, "20%", "round robin")[3])
			for _, a := range []string{"least connections", "P2C", "weighted RR, weights = capacity"} {
				assert.Less(t, millis(t, clitest.Row(t, out, "20%", a)[3]), rr, "%s beats round robin at p99 (simulated)", a)
			}
			assert.Greater(t, millis(t, clitest.Row(t, out, "30%", "round robin")[3]), 1000.0, "30%: round robin's slow queue grows")
			// Round robin gives every backend its quarter, by construction, as
			// long as each request is one pick: a connect that failed on a
			// loaded machine is retried (and its backend ejected), which
			// moves requests. A run on a loaded machine printed 21.0%.
			rrLoop := clitest.Row(t, out, "round robin")
			if rrLoop[4] == "0" {
				assert.Equal(t, "25.0%", rrLoop[3], "on loopback too, round robin gives the slow backend its quarter")
			} else {
				t.Logf("round robin on loopback: %s requests retried, share %s", rrLoop[4], rrLoop[3])
			}
		}},
		{"ratelimit", 2, []string{
			"200(9) 200(8) 200(7) 200(6) 200(5) 200(4) 200(3) 200(2) 200(1) 200(0) 429(0)",
			"Retry-After: 1, X-RateLimit-Limit: 10, X-RateLimit-Remaining: 0, Content-Type: application/json",
			`{"error":"rate_limit_exceeded","message":"Too many requests, please retry after 1 second","retry_after":1}`,
			"250 ms later (one token back): 200",
			"Redis: in-process miniredis",
			"true true true true true false(Retry-After 1s) false false",
			"10 of 10 allowed",
		}, func(t *testing.T, out string) {
			assert.Equal(t, []string{"50", "10"}, clitest.Row(t, out, "each with a new X-Forwarded-For")[1:3])
			assert.Equal(t, []string{"50", "10"}, clitest.Row(t, out, "each on a new connection (new source port)")[1:3])
			assert.Equal(t, "200", clitest.Row(t, out, "fail-open")[1])
			closed := clitest.Row(t, out, "fail-closed")
			assert.Equal(t, "503, Retry-After: 1", closed[1])
			assert.Contains(t, closed[2], "connection refused")
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			out := runMode(t, tt.mode)
			assert.Equal(t, tt.sections, strings.Count("\n"+out, "\n== "), "sections printed")
			for _, want := range tt.want {
				assert.Contains(t, out, want)
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

// -chart writes the simulation's SVG, the same bytes on every run: `go
// generate` and CI's freshness check rely on that.
func TestChartIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	var svgs [][]byte
	for i := range 2 {
		path := filepath.Join(dir, strconv.Itoa(i)+".svg")
		out := runMode(t, "slow", "-chart", path)
		assert.Contains(t, out, "chart: "+path)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		svgs = append(svgs, b)
	}
	assert.Equal(t, svgs[0], svgs[1])
	assert.True(t, bytes.HasPrefix(svgs[0], []byte("<svg ")))
	for _, a := range []string{"round robin", "least connections", "P2C"} {
		assert.Contains(t, string(svgs[0]), ">"+a+"<")
	}
	committed, err := os.ReadFile("slow-backend.svg")
	require.NoError(t, err)
	assert.Equal(t, string(committed), string(svgs[0]), "slow-backend.svg is stale: go generate ./part02-loadbalancing")
}

// Command-line mistakes are usage errors: a message and the usage on stderr,
// nothing on stdout, exit status 2.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-mode", "bogus"}, `unknown -mode "bogus"`},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"-mode", "slow", "extra"}, `unexpected argument "extra"`},
		{[]string{"-requests", "99"}, "-requests 99 is out of range"},
		{[]string{"-requests", "1000001"}, "-requests 1000001 is out of range"},
		{[]string{"-requests", "many"}, `invalid value "many" for flag -requests`},
		{[]string{"-redis", "cluster"}, `unknown -redis "cluster"`},
		{[]string{"-chart", "x.svg"}, "-chart draws the slow-backend simulation; use it with -mode slow"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"serve", "-algo", "random"}, `unknown -algo "random"`},
		{[]string{"serve", "-backends", "0"}, "-backends 0 is out of range 1..16"},
		{[]string{"serve", "-burst", "0"}, "-burst 0 is out of range"},
		{[]string{"serve", "-rate", "-1"}, "-rate -1 is out of range"},
		{[]string{"serve", "-check", "1ms"}, "-check 1ms is out of range"},
		{[]string{"serve", "-trusted", "10.0.0.0/8,nope"}, `ratelimit: trusted proxy "nope" is neither an address nor a CIDR`},
		{[]string{"serve", "now"}, `unexpected argument "now" after serve's flags`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clitest.UsageError(t, "part02-loadbalancing", run, tt.args, tt.msg)
		})
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-h"}, &stdout)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, cli.Exit("part02-loadbalancing", err, &stderr))
	assert.Empty(t, stderr.String())
	assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part02-loadbalancing "), "the command a reader types, not a build-cache path")
	for _, m := range modes {
		assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String(), "-h lists mode %s with what it shows", m.Name)
	}
	for _, f := range []string{"-mode", "-requests", "-redis", "-chart", "serve"} {
		assert.Contains(t, stdout.String(), f)
	}
	stdout.Reset()
	err = run(t.Context(), []string{"serve", "-h"}, &stdout)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part02-loadbalancing serve "))
	for _, f := range []string{"-addr", "-l4", "-algo", "-backends", "-rate", "-burst", "-trusted", "-check"} {
		assert.Contains(t, stdout.String(), f)
	}
}

// TestServeStopsOnCancel plays Ctrl-C: backends, L7 and L4 answer, a backend
// can be killed and is ejected, and run returns nil once its context ends,
// leaving no goroutine behind.
func TestServeStopsOnCancel(t *testing.T) {
	defer leakcheck.VerifyNone(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(clitest.Lines, 64)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-l4", "127.0.0.1:0", "-algo", "rr", "-check", "20ms"}, out)
	}()
	var base, l4 string
	for base == "" {
		select {
		case line := <-out:
			if m := regexp.MustCompile(`L7 on (http://\S+) .* and L4 on (\S+) `).FindStringSubmatch(line); m != nil {
				base, l4 = m[1], m[2]
			}
		case err := <-done:
			require.FailNow(t, "serve exited early", "%v", err)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "serve did not say where it listens")
		}
	}
	tr := &http.Transport{DisableKeepAlives: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(t require.TestingT, url string) (int, string) { // t: the test, or an EventuallyWithT tick
		resp, err := client.Get(url)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		return resp.StatusCode, resp.Header.Get("X-Backend") + string(body)
	}
	seen := map[string]bool{}
	for range 3 {
		status, b := get(t, base+"/")
		require.Equal(t, http.StatusOK, status)
		seen[b[:2]] = true
	}
	assert.Len(t, seen, 3, "round robin over the 3 backends")
	status, _ := get(t, "http://"+l4+"/")
	assert.Equal(t, http.StatusOK, status, "through L4")

	resp, err := client.Post(base+"/_lab/kill/b1", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, s := get(c, base+"/_lab/status")
		assert.Contains(c, s, `"name":"b1","addr"`)
		assert.Regexp(c, `"name":"b1"[^}]*"healthy":false`, s)
	}, 10*time.Second, 10*time.Millisecond, "b1 ejected")
	for range 6 {
		status, b := get(t, base+"/")
		require.Equal(t, http.StatusOK, status)
		assert.NotEqual(t, "b1", b[:2])
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "serve after cancel")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "serve did not stop after cancel")
	}
	tr.CloseIdleConnections()
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
