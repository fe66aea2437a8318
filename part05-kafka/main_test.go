package main

import (
	"bytes"
	"flag"
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

// quick keeps the experiments short; the defaults are for readers.
var quick = []string{"-stack", "off", "-messages", "2000", "-orders", "50"}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "cell %q", s)
	return n
}

// Every mode runs with no services and prints the lines a reader checks
// against the article.
func TestEveryModeWithoutServices(t *testing.T) {
	for _, tt := range []struct {
		mode  string
		check func(t *testing.T, out string)
	}{
		{"pipeline", func(t *testing.T, out string) {
			r := clitest.Row(t, out, "2000")
			require.Len(t, r, 10, "%q", r)
			assert.Equal(t, "2000", r[2], "applied")
			assert.Equal(t, []string{"0", "0"}, r[7:9], "lag at the end, out of order")
		}},
		{"backpressure", func(t *testing.T, out string) {
			small := clitest.Row(t, out, "article: send, or sleep 10 ms", "8")
			require.Len(t, small, 9, "%q", small)
			assert.Greater(t, atoi(t, small[8]), 10, "a warning per 10 ms sleep")
			blocking := clitest.Row(t, out, "pool.Submit: blocks while full", "8")
			assert.Greater(t, atoi(t, blocking[6]), 0, "blocked sends counted")
			assert.Equal(t, "8", blocking[7], "max queue depth = buffer")
		}},
		{"ordering", func(t *testing.T, out string) {
			plain := clitest.Row(t, out, "pool.Pool: any free worker")
			lanes := clitest.Row(t, out, "pool.Ordered: lane by order ID")
			assert.Equal(t, []string{"0", "0"}, lanes[2:4], "in order with lanes")
			t.Logf("plain pool: %s events out of order", plain[2])
		}},
		{"shopee", func(t *testing.T, out string) {
			assert.Contains(t, out, "in: 500,000/60 = 8333 orders/s; the backlog grows by 8333 - 5000 = 3333 orders/s")
			assert.Contains(t, out, "is full after 10,000 / 3333 = 3.0 s")
			r := clitest.Row(t, out, "1m0s")
			assert.Equal(t, []string{"500,000", "300,000", "200,000", "190,000", "40.0 s"}, r[1:6])
			assert.Contains(t, out, "each write takes 500 / 5000 = 100ms")
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), append([]string{"-mode", tt.mode}, quick...), &out))
			assert.Equal(t, 1, strings.Count("\n"+out.String(), "\n== "), "one section")
			tt.check(t, out.String())
		})
	}
}

// With -stack auto and no Kafka, the pipeline runs in process and says so in
// one line.
func TestAutoWithoutKafkaSaysSo(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:1")
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-mode", "pipeline", "-messages", "500"}, &out))
	lines := strings.Split(out.String(), "\n")
	assert.True(t, strings.HasPrefix(lines[0], "Kafka or PostgreSQL is not running ("), lines[0])
	assert.Contains(t, lines[0], "the pipeline runs in process; `make up SERVICES=\"kafka postgres\"`")
	assert.True(t, strings.HasPrefix(lines[1], "== Pipeline in process"), lines[1])
}

// The default runs every mode in order and exits 0.
func TestRunAll(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), quick, &out))
	last := -1
	for _, title := range []string{"== Pipeline", "== Backpressure", "== Ordering", "== Shopee"} {
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
		{[]string{"-stack", "on"}, `unknown -stack "on"; want auto | off`},
		{[]string{"-messages", "99"}, "-messages 99 is out of range 100..1000000"},
		{[]string{"-orders", "0"}, "-orders 0 is out of range 1..100000"},
		{[]string{"-partitions", "65"}, "-partitions 65 is out of range 1..64"},
		{[]string{"-workers", "0"}, "-workers 0 is out of range 1..1024"},
		{[]string{"-buffer", "-1"}, "-buffer -1 is out of range 0..100000"},
		{[]string{"-workers", "many"}, `invalid value "many" for flag -workers`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clitest.UsageError(t, "part05-kafka", run, tt.args, tt.msg)
		})
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-h"}, &stdout)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, cli.Exit("part05-kafka", err, &stderr))
	assert.Empty(t, stderr.String())
	assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part05-kafka "))
	for _, m := range modes {
		assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String(), "-h lists mode %s", m.Name)
	}
	for _, f := range []string{"-mode", "-stack", "-messages", "-orders", "-partitions", "-workers", "-buffer"} {
		assert.Contains(t, stdout.String(), f)
	}
}
