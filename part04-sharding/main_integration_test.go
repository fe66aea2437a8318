//go:build integration

package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// The demo on the stack's PostgreSQL: the same tables as in memory, from
// real databases.
func TestDemoOnPostgres(t *testing.T) {
	stack.Require(t, stack.Postgres)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-mode", "all", "-rows", "3000", "-k", "5", "-window", "100ms"}, &out), out.String())
	s := out.String()
	assert.Contains(t, s, "shards: PostgreSQL databases part04_shard_0, part04_shard_1, part04_shard_2 and part04_catalog")
	assert.Contains(t, s, "same as one table's ORDER BY score DESC, id DESC LIMIT 5: yes")
	assert.Regexp(t, `directory\s+1,000\s+33.3%\s+1,000\s+1,000 / 1,000 / 1,000 \(max/mean 1.00\)`, s, "the directory moves exactly the minimum")
	assert.Contains(t, s, "(table directory in part04_catalog)")
	assert.Regexp(t, `transaction_log WHERE created_at >= '2026-06-10' AND created_at < '2026-06-20'\s+transaction_log_2026_06\s+0`, s, "pruned to June")
	assert.Contains(t, s, `a row for 2026-08-01: ERROR 23514: no partition of relation "transaction_log" found for row`)
	assert.Contains(t, s, "June through idx_txn_log_user_2026_06, July through transaction_log_2026_07_pkey")
	assert.Contains(t, s, "one id inserted at two times: 2 rows with that id")
	assert.Regexp(t, `hash balance: one event each for users 1..3,000 over user_events_0, user_events_1, user_events_2, user_events_3: `, s)
	assert.Regexp(t, `returns without rows.Close\(\) \(db.Query\)\s+4\s+8\s+[0-4]\s+.*\s+4 / 4\s+leak: `, s)
	assert.Regexp(t, `defer rows.Close\(\)\s+4\s+4\s+[\d,]+\s+`, s, "the fixed handler's row (its WaitCount is asserted flat in TestLeakDetectedFromStats, with a timeout a loaded machine cannot miss)")
	assert.Regexp(t, `500 connections × [\d,]+ kB private = [\d,]+ MB`, s)
	assert.Regexp(t, `check: [\d,]+ rows; lost 0, duplicated 0, on a shard the new routing does not name 0, never written 0`, s,
		"the row count depends on how many writes the writer made during the move (3,000 preloaded, 60% of writes insert): the ledger check is the assertion")
	assert.Regexp(t, `writer: [\d,]+ writes during the move, [\d,]+ acknowledged, 0 failed`, s)
}
