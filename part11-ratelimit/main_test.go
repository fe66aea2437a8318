package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
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
var quick = []string{"-redis", "mini", "-flood", "20000", "-ops", "5000"}

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
		mode  string
		want  []string
		check func(t *testing.T, out string)
	}{
		{"spoof", []string{
			"handler saw r.RemoteAddr = 198.51.100.9:56324",
			"refused (400 Bad Request): proxyproto: PROXY header from an untrusted peer",
			`refused (400 Bad Request): proxyproto: invalid PROXY header: v1 port "99999"`,
		}, func(t *testing.T, out string) {
			assert.Equal(t, []string{"20 of 20", "20"}, clitest.Row(t, out, "direct", "leftmost X-Forwarded-For (naive)")[2:])
			assert.Equal(t, []string{"20 of 20", "20"}, clitest.Row(t, out, "direct", `the article's "{rate:" + r.RemoteAddr + "}:log"`)[2:], "the port makes every connection a new client")
			assert.Equal(t, []string{"5 of 20", "1"}, clitest.Row(t, out, "direct", "clientip.RemoteAddr (port dropped)")[2:])
			assert.Equal(t, []string{"5 of 20", "1"}, clitest.Row(t, out, "via proxy 10.0.0.2 (appends)", "clientip.RightmostUntrusted, proxies 10.0.0.0/8")[2:])
			assert.Equal(t, []string{"5 of 20", "1"}, clitest.Row(t, out, "via proxy 10.0.0.2 (appends)", "clientip.Hops, 1 hop from 10.0.0.0/8")[2:])
		}},
		{"accuracy", nil, func(t *testing.T, out string) {
			assert.Equal(t, []string{"10 (10)", "10 (10)", "10 (10)", "10 (10)", "20 (20)", "10 (10)", "1 (1)"}, clitest.Row(t, out, "10 at 9.9 s, 10 at 10.1 s (straddling an edge)")[1:])
			ends := clitest.Row(t, out, "10 at 9.9 s, 10 at 19.0 s (ends of two windows)")[1:]
			assert.Equal(t, ends[0], ends[1], "the sliding log is the ideal")
			assert.Equal(t, "19 (19)", ends[2], "the counter nearly doubles")
			steady := clitest.Row(t, out, "2 per second for 20 s (twice the rate)")[1:]
			assert.Equal(t, "20 (10)", steady[0])
			assert.Equal(t, steady[0], steady[1])
			assert.Equal(t, "29 (19)", steady[5], "a token bucket of 10 refilling 1/s: 10 + 19 s × 1")
		}},
		{"memory", []string{"n/a: MEMORY USAGE needs a real Redis", "Redis: miniredis (-redis mini; -redis auto uses the stack's Redis at"}, func(t *testing.T, out string) {
			assert.Equal(t, "20,000", clitest.Row(t, out, "the article's ShardedLimiter (never evicts)")[1], "never evicts")
			for _, algo := range []string{"log", "counter", "gcra", "fixed"} {
				assert.Equal(t, "1.00", clitest.Row(t, out, algo, "100")[3], "%s: one round trip per check", algo)
			}
		}},
		{"cluster", []string{"13415, 10937", "8188, 8188", "needs the real Redis Cluster (-redis mini"}, nil},
		{"contention", nil, func(t *testing.T, out string) {
			for _, g := range []string{"1", "2", "8", "64"} {
				row := clitest.Row(t, out, g)
				assert.Regexp(t, `^\d+\.\d\d×$`, row[4])
				assert.Regexp(t, `^\d+\.\d\d×$`, row[5])
			}
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			out := runMode(t, tt.mode)
			assert.Equal(t, 1, strings.Count("\n"+out, "\n== "), "one section")
			for _, want := range tt.want {
				assert.Contains(t, out, want)
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

func TestRunAllInTheArticlesOrder(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), quick, &out))
	last := -1
	for _, title := range []string{"Client IP", "Accuracy at window edges", "Memory per key", "Redis Cluster", "Lock contention"} {
		i := strings.Index(out.String(), title)
		require.Greater(t, i, last, "%q comes after the previous section", title)
		last = i
	}
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
		{[]string{"-redis", "real"}, `unknown -redis "real"`},
		{[]string{"-flood", "10"}, "-flood 10 is out of range"},
		{[]string{"-ops", "x"}, `invalid value "x" for flag -ops`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"serve", "-algo", "sliding"}, `unknown -algo "sliding"`},
		{[]string{"serve", "-limit", "0"}, "-limit/-window/-burst: quota: limit 0 is out of range"},
		{[]string{"serve", "-window", "0s"}, "quota: window 0s is out of range"},
		{[]string{"serve", "-window", "soon"}, `invalid value "soon" for flag -window`},
		{[]string{"serve", "-fail", "maybe"}, `unknown -fail "maybe"`},
		{[]string{"serve", "-trusted-proxies", "10.0.0.0/33"}, `trusted proxy "10.0.0.0/33"`},
		{[]string{"serve", "-trusted-hops", "1"}, "need -trusted-proxies"},
		{[]string{"serve", "-proxy-protocol"}, "need -trusted-proxies"},
		{[]string{"serve", "-trusted-proxies", "10.0.0.0/8", "-trusted-hops", "1", "-ip-header", "X-Real-IP"}, "pick one"},
		{[]string{"serve", "-trusted-hops", "-1", "-trusted-proxies", "10.0.0.0/8"}, "-trusted-hops -1 is out of range"},
		{[]string{"serve", "-trusted-proxies", "10.0.0.0/8", "-proxy-protocol", "-ip-header", "X-Real-IP"}, "-proxy-protocol sets the client address"},
		{[]string{"serve", "-trusted-proxies", "10.0.0.0/8", "-proxy-protocol", "-trusted-hops", "1"}, "-proxy-protocol sets the client address"},
		{[]string{"serve", "-algo", "log", "-burst", "5"}, "-burst applies to -algo token and gcra"},
		{[]string{"serve", "extra"}, `unexpected argument "extra" after serve's flags`},
		{[]string{"-mode", "spoof", "serve"}, `unexpected argument "serve"`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, 2, cli.Exit("part11-ratelimit", run(t.Context(), tt.args, &stdout), &stderr))
			assert.Empty(t, stdout.String(), "nothing printed as if it had run")
			first, _, _ := strings.Cut(stderr.String(), "\n")
			assert.True(t, strings.HasPrefix(first, "part11-ratelimit: "), first)
			assert.Contains(t, first, tt.msg)
			assert.Contains(t, stderr.String(), "usage: go run ./part11-ratelimit", "the usage follows the message")
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout)
		assert.ErrorIs(t, err, flag.ErrHelp)
		assert.Equal(t, 0, cli.Exit("part11-ratelimit", err, &stderr))
		assert.Empty(t, stderr.String())
		assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part11-ratelimit "), "the command a reader types")
		for _, m := range modes {
			assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String())
		}
		for _, f := range []string{"-mode", "-redis", "-flood", "-ops", "-addr", "-algo", "-limit", "-window", "-trusted-proxies", "-trusted-hops", "-ip-header", "-proxy-protocol", "-fail"} {
			assert.Contains(t, stdout.String(), f)
		}
	}
}

// TestServeStopsOnCancel plays Ctrl-C: the server limits GET /api/hello,
// then returns nil once its context ends, leaving no goroutine behind.
func TestServeStopsOnCancel(t *testing.T) {
	defer leakcheck.VerifyNone(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(clitest.Lines, 16)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-redis", "mini", "-algo", "log", "-limit", "2", "-window", "1m"}, out)
	}()
	var addr string
	for addr == "" {
		select {
		case line := <-out:
			if _, rest, ok := strings.Cut(line, "on http://"); ok {
				addr, _, _ = strings.Cut(rest, " ")
			}
		case err := <-done:
			require.FailNow(t, "server exited early", "%v", err)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "server did not say where it listens")
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var codes []int
	for range 3 {
		resp, err := client.Get("http://" + addr + "/api/hello")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			assert.NotEmpty(t, resp.Header.Get("Retry-After"))
			assert.Equal(t, `"hello";q=2;w=60`, resp.Header.Get("RateLimit-Policy"))
		}
	}
	assert.Equal(t, []int{200, 200, 429}, codes, "new connections (new ports) are still one client")

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
