//go:build integration

package graph

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// answer sends nested to a handler on store and returns the answer, failing
// the test if none comes within a minute.
func answer(t *testing.T, store Store, timeout time.Duration) response {
	t.Helper()
	type result struct {
		r   response
		err error
	}
	got := make(chan result, 1)
	go func() {
		_, r, err := postNoRequire(NewHandler(Options{Store: store, Ping: &ping.Service{}, Timeout: timeout}), nested)
		got <- result{r, err}
	}()
	select {
	case res := <-got:
		require.NoError(t, res.err)
		return res.r
	case <-time.After(time.Minute):
		require.FailNow(t, "no answer within a minute")
		return response{}
	}
}

// A paused PostgreSQL (a stalled server: connections open, nothing answers)
// costs a request its Timeout and an error naming it, not a hung client; once
// it is resumed the same store answers, and the data is what it was.
func TestFaultPostgresPausedMidQuery(t *testing.T) {
	shape := Shape{Users: 30, PostsPerUser: 6, CommentsPerPost: 4}
	_, store := testSchema(t, shape)
	want := answer(t, NewMemory(shape), time.Minute)
	require.Empty(t, want.Errors)

	stack.Pause(t, "postgres")
	r := answer(t, store, 2*time.Second)
	require.NotEmpty(t, r.Errors, "no answer from a paused database")
	assert.Contains(t, r.Errors[0].Message, "context deadline exceeded")
	stack.Resume(t, "postgres")

	r = answer(t, store, time.Minute)
	require.Empty(t, r.Errors)
	assert.JSONEq(t, string(want.Data), string(r.Data), "nothing lost")
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
