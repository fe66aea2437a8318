//go:build integration

package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// With the cluster up, -mode slots checks its slots against CLUSTER KEYSLOT and
// shows the article's pair failing across slots and succeeding with a tag,
// and leaves no key behind.
func TestSlotsDemoAgainstTheRealCluster(t *testing.T) {
	stack.Require(t, stack.RedisCluster)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-mode", "slots"}, &out))
	s := out.String()
	for _, w := range []string{
		"(real):",
		"CLUSTER KEYSLOT agrees with slot.Of for 11/11 keys above",
		"(not the owner) -> MOVED 5712 ",
		"MSET user:1001:profile user:1001:cart -> CROSSSLOT",
		"go-redis ClusterClient.TxPipelined, same keys -> CROSSSLOT",
		"EVAL script over KEYS user:1001:profile user:1001:cart -> CROSSSLOT",
		"EXEC via ClusterClient (slot 5712 on ",
		") -> OK; OK",
		"EVAL script over KEYS {user:1001}:profile {user:1001}:cart -> EXISTS = 2, err <nil>",
	} {
		assert.Contains(t, s, w)
	}
	// The MULTI on the first key's owner fails either way: MOVED while queuing
	// (keys on two nodes) or CROSSSLOT at EXEC (one node, two slots).
	assert.Regexp(t, `EXEC on \S+ \(owner of the first\) -> (SET user:1001:cart: MOVED 6577 \S+; EXECABORT|CROSSSLOT)`, s)

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs()})
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range []string{untaggedA, untaggedB, taggedA, taggedB} {
		n, err := cc.Exists(ctx, k).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "%s left behind", k)
	}
}
