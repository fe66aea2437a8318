//go:build integration

package slot_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part09-hashing/slot"
)

func clusterClient(t *testing.T) *redis.ClusterClient {
	t.Helper()
	stack.Require(t, stack.RedisCluster)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// testKeys mixes the article's keys, hash-tag edge cases and random bytes
// (braces included, so that tags start and stop in odd places).
func testKeys() []string {
	keys := []string{"", "{", "}", "{}", "}{", "{{}}", "foo{}{bar}", "foo{bar}{zap}", "foo{", "{{x}}",
		"{user:1001}:profile", "user:1001", "\x00", "\xff\xfe{\x00}"}
	for i := range 2000 {
		keys = append(keys, fmt.Sprintf("key:%d", i))
	}
	rng := rand.New(rand.NewPCG(9, 9))
	alphabet := []byte("ab{}:\x00\xff")
	for range 3000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		keys = append(keys, string(b))
	}
	return keys
}

func TestOfMatchesClusterKeyslot(t *testing.T) {
	cc := clusterClient(t)
	c := ctx(t)
	// CLUSTER KEYSLOT is answered by any node; use one plain connection.
	node := redis.NewClient(&redis.Options{Addr: stack.RedisClusterAddrs()[0]})
	defer node.Close()
	keys := testKeys()
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := node.Pipelined(c, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.ClusterKeySlot(c, k)
		}
		return nil
	})
	require.NoError(t, err)
	slots := map[int]bool{}
	for i, k := range keys {
		assert.Equal(t, int(cmds[i].Val()), slot.Of(k), "Of(%q) vs CLUSTER KEYSLOT", k)
		slots[slot.Of(k)] = true
	}
	require.GreaterOrEqual(t, len(slots), 1000, "distinct slots among %d keys: the comparison is too narrow", len(keys))
	// And through the cluster client, which routes the command itself.
	got, err := cc.ClusterKeySlot(c, "{user:1001}:profile").Result()
	require.NoError(t, err)
	assert.Equal(t, slot.Of("user:1001"), int(got))
}

// owners maps every slot to the address of its master, and lists the masters.
func owners(t *testing.T, cc *redis.ClusterClient) (*[slot.Count]string, []string) {
	t.Helper()
	owner, err := slot.Owners(ctx(t), cc)
	require.NoError(t, err)
	var masters []string
	for s, a := range owner {
		require.NotEmpty(t, a, "slot %d has no owner", s)
		if !slices.Contains(masters, a) {
			masters = append(masters, a)
		}
	}
	require.GreaterOrEqual(t, len(masters), 2, "need at least 2 masters to see MOVED, have %v", masters)
	return owner, masters
}

func TestWrongNodeAnswersMovedWithSlotAndOwner(t *testing.T) {
	cc := clusterClient(t)
	c := ctx(t)
	owner, masters := owners(t, cc)
	plain := map[string]*redis.Client{}
	for _, m := range masters {
		// MaxRetries -1: show the raw reply; a plain client does not follow MOVED.
		plain[m] = redis.NewClient(&redis.Options{Addr: m, MaxRetries: -1})
		defer plain[m].Close()
	}
	moved := 0
	for i := range 30 {
		key := fmt.Sprintf("part09:moved:%d", i)
		s := slot.Of(key)
		for _, m := range masters {
			err := plain[m].Get(c, key).Err()
			if m == owner[s] {
				require.ErrorIs(t, err, redis.Nil, "GET %s on its owner %s", key, m)
				continue
			}
			r, ok := slot.ParseRedirect(fmt.Sprint(err))
			require.True(t, ok && !r.Ask, "GET %s on %s (owner %s): %v, want MOVED", key, m, owner[s], err)
			require.Equal(t, slot.Redirect{Slot: s, Addr: owner[s]}, r, "GET %s on %s", key, m)
			moved++
		}
	}
	require.GreaterOrEqual(t, moved, 30, "MOVED replies: want at least one per key")
}

func TestMultiKeyCommandsNeedOneSlot(t *testing.T) {
	cc := clusterClient(t)
	c := ctx(t)
	owner, _ := owners(t, cc)
	a, b := "part09:cross:a", "part09:cross:b"
	require.NotEqual(t, slot.Of(a), slot.Of(b), "test keys share a slot")
	// On the node that owns a, and through the cluster client: CROSSSLOT.
	node := redis.NewClient(&redis.Options{Addr: owner[slot.Of(a)], MaxRetries: -1})
	defer node.Close()
	for name, err := range map[string]error{
		"plain client on a's owner": node.MSet(c, a, "1", b, "2").Err(),
		"cluster client":            cc.MSet(c, a, "1", b, "2").Err(),
	} {
		require.Error(t, err, name)
		assert.True(t, strings.HasPrefix(err.Error(), "CROSSSLOT"), "%s: MSET across slots = %v, want CROSSSLOT", name, err)
	}
	for _, k := range []string{a, b} { // one key per EXISTS: EXISTS a b is itself CROSSSLOT
		n, err := cc.Exists(c, k).Result()
		require.NoError(t, err)
		require.Zero(t, n, "a rejected MSET wrote %s", k)
	}

	// With a hash tag both keys live in one slot and the same MSET succeeds.
	ta, tb := "part09:cross:{user:1001}:name", "part09:cross:{user:1001}:plan"
	t.Cleanup(func() { cc.Del(context.Background(), ta, tb) })
	require.Equal(t, slot.Of(ta), slot.Of(tb), "tagged keys in different slots")
	require.NoError(t, cc.MSet(c, ta, "ada", tb, "pro").Err(), "MSET with hash tag")
	vals, err := cc.MGet(c, ta, tb).Result()
	require.NoError(t, err)
	assert.Equal(t, []any{"ada", "pro"}, vals)
}

// The article: hash tags are "required for MULTI/EXEC and Lua scripts across
// keys". Its untagged pair user:1001:profile / user:1001:cart (slots 2549 and
// 6577) cannot share a transaction or a script: the server answers CROSSSLOT
// (or MOVED while queuing, then EXECABORT, when the slots sit on two nodes)
// and go-redis's cluster client refuses the transaction before sending it.
// With the tag {user:1001} both run, atomically, on one node.
func TestHashTagsAllowMultiExecAndScripts(t *testing.T) {
	cc := clusterClient(t)
	c := ctx(t)
	owner, _ := owners(t, cc)
	a, b := "part09:tx:user:1001:profile", "part09:tx:user:1001:cart"
	for slot.Of(a) == slot.Of(b) {
		b += "x"
	}
	ta, tb := "part09:tx:{user:1001}:profile", "part09:tx:{user:1001}:cart"
	t.Cleanup(func() { cc.Del(context.Background(), a, b, ta, tb) })
	set := func(k1, k2 string) func(redis.Pipeliner) error {
		return func(p redis.Pipeliner) error {
			p.Set(c, k1, "1", time.Minute)
			p.Set(c, k2, "2", time.Minute)
			return nil
		}
	}
	script := redis.NewScript(`redis.call("SET", KEYS[1], "1"); redis.call("SET", KEYS[2], "2"); return 2`)

	// Across slots: a plain connection to a's owner, the cluster client, a script.
	home := redis.NewClient(&redis.Options{Addr: owner[slot.Of(a)], MaxRetries: -1})
	defer home.Close()
	_, err := home.TxPipelined(c, set(a, b))
	require.Error(t, err)
	if owner[slot.Of(a)] == owner[slot.Of(b)] {
		assert.True(t, strings.HasPrefix(err.Error(), "CROSSSLOT"), "MULTI/EXEC on one node, two slots: %v", err)
	} else {
		assert.True(t, strings.HasPrefix(err.Error(), "EXECABORT"), "MULTI/EXEC with b on another node: %v", err)
	}
	_, err = cc.TxPipelined(c, set(a, b))
	assert.ErrorIs(t, err, redis.ErrCrossSlot, "cluster client transaction across slots")
	err = script.Run(c, cc, []string{a, b}).Err()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "CROSSSLOT"), "script across slots: %v", err)
	n, err := cc.Exists(c, a).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "a failed transaction or script wrote a")
	n, err = cc.Exists(c, b).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "a failed transaction or script wrote b")

	// One slot: both run.
	cmds, err := cc.TxPipelined(c, set(ta, tb))
	require.NoError(t, err)
	require.Len(t, cmds, 2)
	vals, err := cc.MGet(c, ta, tb).Result()
	require.NoError(t, err)
	assert.Equal(t, []any{"1", "2"}, vals)
	require.NoError(t, cc.Del(c, ta, tb).Err())
	got, err := script.Run(c, cc, []string{ta, tb}).Int()
	require.NoError(t, err)
	assert.Equal(t, 2, got)
	vals, err = cc.MGet(c, ta, tb).Result()
	require.NoError(t, err)
	assert.Equal(t, []any{"1", "2"}, vals)
}

// The article: "Each node owns a range of slots". Every one of the 16384
// slots has exactly one master (owners fails otherwise), and a master's slots
// are a list of ranges, as CLUSTER SHARDS reports them: resharding moves slots
// one by one, so a master can hold several. -v prints them.
func TestEverySlotHasOneMasterInRanges(t *testing.T) {
	cc := clusterClient(t)
	owner, masters := owners(t, cc)
	ranges := map[string][][2]int{}
	covered := 0
	for s := 0; s < slot.Count; {
		e := s
		for e+1 < slot.Count && owner[e+1] == owner[s] {
			e++
		}
		ranges[owner[s]] = append(ranges[owner[s]], [2]int{s, e})
		covered += e - s + 1
		s = e + 1
	}
	assert.Equal(t, slot.Count, covered)
	assert.Len(t, ranges, len(masters))
	for _, m := range masters {
		t.Logf("%s owns slots %v", m, ranges[m])
	}
}
