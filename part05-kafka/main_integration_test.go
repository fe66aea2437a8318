//go:build integration

package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli/clitest"
	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// With the stack up the pipeline runs on Kafka and PostgreSQL: every event
// produced is applied, in order, and the lag ends at 0.
func TestDemoOnKafka(t *testing.T) {
	stack.Require(t, stack.Kafka, stack.Postgres)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-mode", "pipeline", "-messages", "3000", "-orders", "100"}, &out))
	assert.Contains(t, out.String(), "== Pipeline on Kafka (")
	r := clitest.Row(t, out.String(), "3000")
	require.Len(t, r, 11, "%q", r)
	assert.Equal(t, "0", r[1], "unacked")
	assert.Equal(t, "3000", r[3], "applied in PostgreSQL")
	assert.Equal(t, []string{"0", "0"}, r[8:10], "lag at the end, out of order")
}
