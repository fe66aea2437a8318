package main

import (
	"bytes"
	"errors"
	"flag"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/internal/cli/clitest"
	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// quick keeps the measured sections short and uses the stand-ins; the
// defaults are for readers.
var quick = []string{"-stack", "off", "-samples", "20", "-goroutines", "4", "-prizes", "200", "-claimers", "8", "-budget", "3s"}

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
		{"race", 1, []string{`the article's "final balance=700, lost $500"`}, func(t *testing.T, out string) {
			assert.Equal(t, []string{"1000", "500", "1000", "700", "700", "200", "500"}, clitest.Row(t, out, "no lock")[1:], "the diagram's lost update")
			r := clitest.Row(t, out, "Redlock")
			assert.Equal(t, []string{"200", "200", "0"}, r[5:], "with the lock: 1000 − 500 − 300")
		}},
		{"validity", 3, []string{
			"9,730 ms", // the article's example
			"9,860 ms", // redsync, parallel acquisition
			"quorum N/2+1 = 2 of 3",
		}, func(t *testing.T, out string) {
			assert.Equal(t, []string{"WithTTL(0): keeps the 60 s default", "60 s", "rejected: under 1 s"}, clitest.Row(t, out, "500 ms")[1:])
			assert.Equal(t, []string{"WithTTL(1)", "2 s", "1 s, granted 2 s"}, clitest.Row(t, out, "1,000 ms")[1:], "the server's minimum")
			assert.Equal(t, []string{"WithTTL(2)", "2 s", "3 s, granted 3 s"}, clitest.Row(t, out, "2,500 ms")[1:], "truncated vs rounded up")
			m := regexp.MustCompile(`the article's options\s+the lock's TTL\s+5\s+100 ms\s+([\d,]+) ms \(measured\)`).FindStringSubmatch(out)
			if assert.NotNil(t, m, "the article's options row") {
				// 5 tries 100 ms apart: 4 waits, so at least 400 ms; a loaded
				// machine adds to it (584 ms seen), hence only a generous upper bound.
				ms, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
				require.NoError(t, err)
				assert.GreaterOrEqual(t, ms, 400)
				assert.Less(t, ms, 5000)
			}
			assert.Regexp(t, `redsync's defaults\s+8 s\s+32\s+random 50.0 ms–250 ms\s+[\d,]+ ms \(measured\)`, out)
			assert.Regexp(t, `redsync on this run's masters .* ([\d,]+ ms) by the formula; Until\(\) − now = ([\d,]+ ms)`, out)
		}},
		{"latency", 2, []string{"ZooKeeper", "measured on in-process stand-ins"}, func(t *testing.T, out string) {
			for _, b := range []string{"Redlock, 3 masters (lock.Redlock)", "Redis, 1 master (lock.Redlock)", "etcd, one shared lease (lock.Etcd)"} {
				assert.Len(t, clitest.Row(t, out, b), 6, "%s: p50 p90 p99 max and the article's figure", b)
			}
			for _, b := range []string{"Redlock, 3 masters, retry every 1–5 ms", "etcd, waiters woken by the deletion ahead"} {
				assert.Equal(t, []string{"0", "0", "0"}, clitest.Row(t, out, b)[2:], "%s: no overlap, tokens in order, nothing failed", b)
			}
		}},
		{"fencing", 1, []string{"-- Redlock, 3 masters; writes go to a in-memory fencing store --", "-- etcd;"}, func(t *testing.T, out string) {
			assert.Equal(t, 2, strings.Count(out, "A's lock context is cancelled (lock: lock lost"), "both backends report the loss")
			assert.Len(t, regexp.MustCompile(`A wakes and sends its write with token \d+: REJECTED: fencing: token \d+ for "\S+" is stale: token \d+ has written`).FindAllString(out, -1), 2, "both backends' late writes are refused")
			assert.Len(t, regexp.MustCompile(`A's ExecuteWithLock returns: .*lock: lock lost`).FindAllString(out, -1), 2, "and both report the loss to A's caller")
			assert.Regexp(t, `result\s+the store holds "B's value \(token \d+\)"; without the token check it would hold "A's value`, out)
		}},
		{"campaign", 1, []string{"the article: \"Write throughput capped at ~2 operations/second\""}, func(t *testing.T, out string) {
			lua := clitest.Row(t, out, "one Lua script, no lock")
			assert.Equal(t, []string{"200 of 200", "0", "0"}, lua[2:5], "exact, never over")
			for _, s := range []string{
				"Redlock, the article's options (TTL 500 ms, 5 tries 100 ms apart)",
				"Redlock, TTL 500 ms, redsync's retries (32, 50–250 ms apart)",
				"etcd lock, TTL 1 s (500 ms is under etcd's 1 s)",
			} {
				assert.Equal(t, "0", clitest.Row(t, out, s)[3], "%s: never over-awarded", s)
			}
			assert.Len(t, clitest.Row(t, out, "no lock: read, check, write (two round trips)"), 6)
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			out := runMode(t, tt.mode)
			assert.Equal(t, tt.sections, strings.Count("\n"+out, "\n== "), "sections printed")
			assert.Contains(t, out, "Redlock:    3 miniredis servers in-process (`make up`", "says which stand-in runs and how to get the real one")
			assert.Contains(t, out, "etcd:       embedded etcd server")
			for _, want := range tt.want {
				assert.Contains(t, out, want)
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
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
		{[]string{"-mode", "race", "extra"}, `unexpected argument "extra"`},
		{[]string{"-stack", "on"}, `unknown -stack "on"`},
		{[]string{"-samples", "9"}, "-samples 9 is out of range 10..100000"},
		{[]string{"-samples", "many"}, `invalid value "many" for flag -samples`},
		{[]string{"-goroutines", "1"}, "-goroutines 1 is out of range 2..256"},
		{[]string{"-prizes", "0"}, "-prizes 0 is out of range"},
		{[]string{"-claimers", "1025"}, "-claimers 1025 is out of range"},
		{[]string{"-budget", "50ms"}, "-budget 50ms is out of range 100ms..10m"},
		{[]string{"-budget", "5"}, `invalid value "5" for flag -budget`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clitest.UsageError(t, "part06-locks", run, tt.args, tt.msg)
		})
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-h"}, &stdout)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, cli.Exit("part06-locks", err, &stderr))
	assert.Empty(t, stderr.String())
	assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part06-locks "), "the command a reader types, not a build-cache path")
	for _, m := range modes {
		assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String(), "-h lists mode %s with what it shows", m.Name)
	}
	for _, f := range []string{"-mode", "-stack", "-samples", "-goroutines", "-prizes", "-claimers", "-budget", "-v"} {
		assert.Contains(t, stdout.String(), f)
	}
}

func TestRunFailureExitsOne(t *testing.T) {
	var stderr bytes.Buffer
	assert.Equal(t, 1, cli.Exit("part06-locks", errors.New("campaign: dial tcp: connection refused"), &stderr))
	assert.Equal(t, "part06-locks: campaign: dial tcp: connection refused\n", stderr.String())
	assert.Equal(t, 0, cli.Exit("part06-locks", nil, &stderr))
}
