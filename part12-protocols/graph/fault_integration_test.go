//go:build integration

package graph

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// answer sends nested to a handler on store and returns the answer, failing
// the test if none comes within a minute.
func answer(t *testing.T, store Store, timeout time.Duration) response {
	t.Helper()
	return await(t, send(store, timeout))
}

type result struct {
	r   response
	err error
}

// send sends nested to a handler on store from a goroutine of its own.
func send(store Store, timeout time.Duration) <-chan result {
	got := make(chan result, 1)
	go func() {
		_, r, err := postNoRequire(NewHandler(Options{Store: store, Ping: &ping.Service{}, Timeout: timeout}), nested)
		got <- result{r, err}
	}()
	return got
}

// await returns send's answer, failing the test if none comes within a minute.
func await(t *testing.T, got <-chan result) response {
	t.Helper()
	select {
	case res := <-got:
		require.NoError(t, res.err)
		return res.r
	case <-time.After(time.Minute):
		require.FailNow(t, "no answer within a minute")
		return response{}
	}
}

// gate is a Store whose first PostsByUser call, the posts level's DataLoader
// batch (users have answered by then), waits at the gate until the test has
// broken PostgreSQL, then goes on with the request's context. live reports
// whether that context still had time left when it went on.
type gate struct {
	Store
	once           sync.Once
	reached, opens chan struct{}
	live           chan bool
}

func newGate(s Store) *gate {
	return &gate{Store: s, reached: make(chan struct{}), opens: make(chan struct{}), live: make(chan bool, 1)}
}

func (g *gate) PostsByUser(ctx context.Context, userIDs []int, limit int) ([]*Post, error) {
	g.once.Do(func() {
		close(g.reached)
		<-g.opens
		g.live <- ctx.Err() == nil
	})
	return g.Store.PostsByUser(ctx, userIDs, limit)
}

// midBatch sends nested through g and, once the DataLoader's batch is at the
// gate, breaks PostgreSQL with brk, opens the gate and returns the answer.
func midBatch(t *testing.T, g *gate, timeout time.Duration, brk func()) response {
	t.Helper()
	got := send(g, timeout)
	select {
	case <-g.reached:
	case <-time.After(time.Minute):
		require.FailNow(t, "the DataLoader's batch never came")
	}
	brk()
	close(g.opens)
	require.True(t, <-g.live, "the request still had time left when its batch went to the broken server")
	return await(t, got)
}

// PostgreSQL paused under a DataLoader's batch (users answered, the posts
// batch sent to a server that has stopped answering: connections open,
// nothing comes back) costs the request its Timeout and an error naming it,
// not a hung client; once it is resumed the same store answers the same
// data.
func TestFaultPostgresPausedMidQuery(t *testing.T) {
	shape := Shape{Users: 30, PostsPerUser: 6, CommentsPerPost: 4}
	_, store := testSchema(t, shape)
	want := answer(t, NewMemory(shape), time.Minute)
	require.Empty(t, want.Errors)

	r := midBatch(t, newGate(store), 15*time.Second, func() { stack.Pause(t, "postgres") })
	require.NotEmpty(t, r.Errors, "no answer from a paused database")
	assert.Contains(t, r.Errors[0].Message, "context deadline exceeded")
	stack.Resume(t, "postgres")

	r = answer(t, store, time.Minute)
	require.Empty(t, r.Errors)
	assert.JSONEq(t, string(want.Data), string(r.Data), "nothing lost")
}

// PostgreSQL killed under a DataLoader's batch is an error at once, not a
// wait for the deadline; after the restart the pool dials again and the
// same query answers with the same data.
func TestFaultPostgresKilledMidQuery(t *testing.T) {
	shape := Shape{Users: 30, PostsPerUser: 6, CommentsPerPost: 4}
	_, store := testSchema(t, shape)
	want := answer(t, store, time.Minute)
	require.Empty(t, want.Errors)

	r := midBatch(t, newGate(store), time.Minute, func() { stack.Kill(t, "postgres") })
	require.NotEmpty(t, r.Errors, "no answer from a dead database")
	assert.NotContains(t, r.Errors[0].Message, "context deadline exceeded", "refused, not timed out")
	stack.Restart(t, "postgres")

	r = answer(t, store, time.Minute)
	require.Empty(t, r.Errors)
	assert.JSONEq(t, string(want.Data), string(r.Data))
}

// A killed PostgreSQL is an error at once; after the restart the pool dials
// again and the same query answers with the same data.
func TestFaultPostgresKilledBetweenQueries(t *testing.T) {
	shape := Shape{Users: 30, PostsPerUser: 6, CommentsPerPost: 4}
	_, store := testSchema(t, shape)
	want := answer(t, store, time.Minute)
	require.Empty(t, want.Errors)

	stack.Kill(t, "postgres")
	r := answer(t, store, 10*time.Second)
	require.NotEmpty(t, r.Errors, "no answer from a dead database")
	assert.False(t, strings.Contains(r.Errors[0].Message, "context deadline exceeded"), "refused, not timed out: %s", r.Errors[0].Message)
	stack.Restart(t, "postgres")

	r = answer(t, store, time.Minute)
	require.Empty(t, r.Errors)
	assert.JSONEq(t, string(want.Data), string(r.Data))
}

// A restart quicker than pgxpool's one-second ping threshold leaves the pool
// holding dead connections it hands out without a ping. The CI run that
// found this (kill, refused answer, restart, answer: 1.05 s in all) got
// "unexpected EOF" from the first answer after the restart. The pool here
// never pings, which makes that window certain: the store drops the dead
// connections and answers on a new one, and the cleanup's DROP SCHEMA,
// later, on the same pool, does not meet one either.
func TestFaultPostgresRestartedUnderIdleConnections(t *testing.T) {
	shape := Shape{Users: 30, PostsPerUser: 6, CommentsPerPost: 4}
	pool, store := testSchema(t, shape, func(c *pgxpool.Config) {
		c.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	})
	want := answer(t, store, time.Minute)
	require.Empty(t, want.Errors)
	require.EqualValues(t, 4, pool.Stat().IdleConns(), "every connection open and idle before the kill")

	stack.Kill(t, "postgres")
	stack.Restart(t, "postgres")

	r := answer(t, store, time.Minute)
	require.Empty(t, r.Errors, "the first request after the restart")
	assert.JSONEq(t, string(want.Data), string(r.Data))
	r = answer(t, store, time.Minute)
	require.Empty(t, r.Errors, "the second")
}
