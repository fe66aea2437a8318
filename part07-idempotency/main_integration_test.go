//go:build integration

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli/clitest"
	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// The demo with the stack up uses the real Redis and PostgreSQL and gets the
// same invariants as the stand-ins.
func TestDemoOnRealStores(t *testing.T) {
	stack.Require(t, stack.Redis, stack.Postgres)
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"-mode", "concurrent", "-requests", "100"}, &out))
	for _, store := range []string{"memory", "Redis", "PostgreSQL"} {
		checkConcurrent(t, out.String(), store, 100)
	}
	assert.Regexp(t, `redisstore, Redis [7-9]\.\d+\.\d+ at `, out.String())
	assert.Contains(t, out.String(), "pgstore, masterclass@")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"-mode", "storm", "-clients", "10"}, &out))
	mw := clitest.Row(t, out.String(), "Idempotency-Key middleware (Redis)")
	assert.Equal(t, []string{"10", "10", "0"}, mw[8:11], "handler runs, payments, double charges")
}
