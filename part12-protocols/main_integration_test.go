//go:build integration

package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// With the stack's PostgreSQL the GraphQL experiment counts statements with
// pg_stat_statements.
func TestGraphQLDemoOnPostgres(t *testing.T) {
	stack.Require(t, stack.Postgres)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-mode", "graphql"}, &out))
	assert.NotContains(t, out.String(), "not reachable")
	checkGraphQL(t, out.String(), "statements PostgreSQL executed (pg_stat_statements)")
}
