package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/internal/cli/clitest"
	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// TestMain runs the tests, or, with PART08_CHILD set, this binary as the
// command with those arguments: the fault tests start workers and relays as
// processes they can SIGKILL.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("PART08_CHILD"); ok {
		os.Args = append([]string{"part08-saga"}, strings.Fields(args)...)
		cli.Main("part08-saga", run)
	}
	leakcheck.VerifyTestMain(m)
}

// noServices points every address at a closed port.
func noServices(t *testing.T) {
	t.Setenv(stack.EnvTemporal, "127.0.0.1:1")
	t.Setenv(stack.EnvPostgres, "postgres://u:p@127.0.0.1:1/db")
	t.Setenv(stack.EnvKafka, "127.0.0.1:1")
}

// Without services the saga runs in the SDK's test environment on a memory
// store, says so, and prints each step and compensation of both sagas.
func TestSagaModeWithoutServices(t *testing.T) {
	noServices(t)
	for _, step := range []string{"create-order", "reserve-inventory", "process-payment", "notify-fulfillment"} {
		t.Run(step, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), []string{"-mode", "saga", "-fail", step}, &out))
			s := out.String()
			assert.Contains(t, s, "Temporal: not reachable at 127.0.0.1:1; the same workflow and activities run in the SDK's test environment")
			assert.Contains(t, s, "PostgreSQL: not reachable")
			assert.Contains(t, s, "engine: the SDK's test environment")
			assert.Regexp(t, `saga o-\w+-1 \(2 items, 189\.80 USD\): completed in`, s)
			assert.Regexp(t, `saga o-\w+-2 .*: failed in .*: SAGA_COMPENSATED caused by `, s)
			happy, failing, _ := strings.Cut(s, "-2 (")
			for _, st := range []string{"create-order", "reserve-inventory", "process-payment", "notify-fulfillment"} {
				assert.Regexp(t, `(?m)^  \+\S+ ms +`+st+` `, happy)
			}
			var order []string
			for line := range strings.Lines(failing) {
				if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(f[0], "+") {
					order = append(order, strings.Join(f[2:4], " "))
					if f[2] == "compensate" {
						order[len(order)-1] = "compensate " + f[3]
					} else {
						order[len(order)-1] = f[2]
					}
				}
			}
			want := map[string][]string{
				"create-order":       nil,
				"reserve-inventory":  {"create-order", "compensate create-order"},
				"process-payment":    {"create-order", "reserve-inventory", "compensate reserve-inventory", "compensate create-order"},
				"notify-fulfillment": {"create-order", "reserve-inventory", "process-payment", "compensate process-payment", "compensate reserve-inventory", "compensate create-order"},
			}[step]
			assert.Equal(t, want, order, "the failing saga's journal")
		})
	}
}

// The default runs every mode in order and exits 0.
func TestRunAll(t *testing.T) {
	noServices(t)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), nil, &out))
	assert.Contains(t, out.String(), "== The order saga")
	assert.Contains(t, out.String(), "== Transactional outbox")
	assert.Contains(t, out.String(), "Kafka: not reachable")
	assert.Contains(t, out.String(), "order c-3 (payment declines): cancelled, reservation \"released\", charges 0")
	assert.Contains(t, out.String(), "order c-1 (completes): confirmed, reservation \"reserved\", charges 1")
	assert.Contains(t, out.String(), "12 events for 3 orders")
	assert.Contains(t, out.String(), "left out: the outbox needs PostgreSQL and Kafka")
	assert.Contains(t, out.String(), "`make up` or set DATABASE_URL and KAFKA_BROKERS")
}

// Command-line mistakes are usage errors: a message and the usage on stderr,
// nothing on stdout, exit status 2.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-mode", "bogus"}, `unknown -mode "bogus"`},
		{[]string{"stray"}, `unexpected argument "stray" (the subcommands are worker, start and relay, and they come first)`},
		{[]string{"-engine", "cadence"}, `unknown -engine "cadence"`},
		{[]string{"-store", "mongo"}, `unknown -store "mongo"`},
		{[]string{"-fail", "ship"}, `unknown -fail "ship"`},
		{[]string{"-fault", "slow"}, `unknown -fault "slow"`},
		{[]string{"-events", "5"}, "-events 5 is out of range 10..100000"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"worker", "extra"}, `worker: unexpected argument "extra"`},
		{[]string{"worker", "-task-queue", ""}, "worker: -task-queue is empty"},
		{[]string{"worker", "-fail", "create-order"}, "flag provided but not defined: -fail"},
		{[]string{"start", "-fail", "ship"}, `unknown -fail "ship"`},
		{[]string{"start", "-store", "disk"}, `unknown -store "disk"`},
		{[]string{"relay", "-kind", "debezium"}, `unknown -kind "debezium"`},
		{[]string{"relay", "-batch", "0"}, "-batch 0 is out of range 1..10000"},
		{[]string{"relay", "-interval", "0s"}, "-interval 0s is out of range 1ms..1m"},
		{[]string{"relay", "-slot", ""}, "-slot is empty"},
		{[]string{"relay", "x"}, `relay: unexpected argument "x"`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clitest.UsageError(t, "part08-saga", run, tt.args, tt.msg)
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"worker", "-h"}, {"start", "-h"}, {"relay", "-h"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout)
		assert.ErrorIs(t, err, flag.ErrHelp)
		assert.Equal(t, 0, cli.Exit("part08-saga", err, &stderr))
		assert.Empty(t, stderr.String())
		assert.True(t, strings.HasPrefix(stdout.String(), "usage: go run ./part08-saga "))
		for _, m := range modes {
			assert.Regexp(t, `(?m)^  `+m.Name+` +\S`, stdout.String(), "-h lists mode %s", m.Name)
		}
		for _, f := range []string{"-mode", "-engine", "-store", "-fail", "-fault", "-task-queue", "worker flags:", "start flags:", "relay flags:", "-kind", "-slot"} {
			assert.Contains(t, stdout.String(), f)
		}
	}
}

// An explicit engine that is not running is a failure (exit 1), not a silent stand-in.
func TestExplicitEngineMustBeReachable(t *testing.T) {
	noServices(t)
	var out bytes.Buffer
	err := run(t.Context(), []string{"-mode", "saga", "-engine", "temporal", "-store", "memory"}, &out)
	assert.ErrorContains(t, err, "temporal: temporal at 127.0.0.1:1")
	assert.Equal(t, 1, cli.Exit("part08-saga", err, &bytes.Buffer{}))
}
