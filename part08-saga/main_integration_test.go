//go:build integration

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli/clitest"
	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// With the stack up the demo runs on the real services and says so.
func TestDemoOnTheStack(t *testing.T) {
	stack.Require(t, stack.Temporal, stack.Postgres, stack.Kafka)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-events", "200"}, &out))
	s := out.String()
	assert.Contains(t, s, "engine: Temporal at "+stack.TemporalAddress())
	assert.Contains(t, s, "state: PostgreSQL at ")
	assert.Contains(t, s, "SAGA_COMPENSATED caused by PAYMENT_DECLINED")
	assert.NotContains(t, s, "left out")
	for _, relay := range []string{"poll", "cdc"} {
		row := clitest.Row(t, s, relay)
		require.GreaterOrEqual(t, len(row), 7, "%q", row)
		assert.Equal(t, "200", row[1], "%s: every event measured", relay)
		assert.True(t, strings.HasSuffix(row[3], "ms") || row[3] == "ms", "%q", row)
	}
}
