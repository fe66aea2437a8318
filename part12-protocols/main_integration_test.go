//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// The curl commands serve prints work as printed: each is run by sh and
// answers Ping ("hi") or the GraphQL query, without an error. (The GraphQL
// one sent curl -d's form Content-Type, which gqlgen's POST transport does
// not take: "transport not supported".)
func TestServePrintsCommandsThatWork(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		stack.SkipOrFail(t, "curl is not installed (apt-get install curl)")
	}
	t.Setenv(stack.EnvPostgres, "postgres://u:p@127.0.0.1:1/db") // the in-memory store: quick to start
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	s := serveAddrs(t, ctx, done)
	ran := 0
	for _, cmd := range s.commands {
		if !strings.HasPrefix(cmd, "curl ") {
			continue // grpcurl: TestGrpcurl runs it
		}
		ran++
		cctx, ccancel := context.WithTimeout(t.Context(), time.Minute)
		out, err := exec.CommandContext(cctx, "sh", "-c", cmd+" --max-time 30 -w '\\n%{http_code}'").Output()
		ccancel()
		require.NoError(t, err, cmd)
		i := bytes.LastIndexByte(out, '\n')
		body, code := strings.TrimSpace(string(out[:i])), string(out[i+1:])
		assert.Equal(t, "200", code, "%s\n%s", cmd, body)
		var answer map[string]any
		if !assert.NoError(t, json.Unmarshal([]byte(body), &answer), "%s\n%s", cmd, body) {
			continue
		}
		assert.NotContains(t, answer, "errors", "%s\n%s", cmd, body)
		if _, ok := answer["data"]; !ok {
			assert.Equal(t, "hi", answer["message"], "%s\n%s", cmd, body)
		}
	}
	assert.Equal(t, 3, ran, "Connect, REST and GraphQL")
	stopServe(t, cancel, done)
}
