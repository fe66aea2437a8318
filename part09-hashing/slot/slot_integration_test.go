//go:build integration

package slot_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	if err != nil {
		t.Fatal(err)
	}
	slots := map[int]bool{}
	for i, k := range keys {
		if got, want := slot.Of(k), int(cmds[i].Val()); got != want {
			t.Errorf("Of(%q) = %d, CLUSTER KEYSLOT = %d", k, got, want)
		}
		slots[slot.Of(k)] = true
	}
	if len(slots) < 1000 {
		t.Fatalf("only %d distinct slots among %d keys: the comparison is too narrow", len(slots), len(keys))
	}
	// And through the cluster client, which routes the command itself.
	if got, err := cc.ClusterKeySlot(c, "{user:1001}:profile").Result(); err != nil || int(got) != slot.Of("user:1001") {
		t.Fatalf("cluster client KEYSLOT = %d, %v", got, err)
	}
}

// owners maps every slot to the address of its master, and lists the masters.
func owners(t *testing.T, cc *redis.ClusterClient) (*[slot.Count]string, []string) {
	t.Helper()
	owner, err := slot.Owners(ctx(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	var masters []string
	for s, a := range owner {
		if a == "" {
			t.Fatalf("slot %d has no owner", s)
		}
		if !slices.Contains(masters, a) {
			masters = append(masters, a)
		}
	}
	if len(masters) < 2 {
		t.Fatalf("need at least 2 masters to see MOVED, have %v", masters)
	}
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
				if !errors.Is(err, redis.Nil) {
					t.Fatalf("GET %s on its owner %s: %v, want nil reply", key, m, err)
				}
				continue
			}
			r, ok := slot.ParseRedirect(fmt.Sprint(err))
			if !ok || r.Ask {
				t.Fatalf("GET %s on %s (owner %s): %v, want MOVED", key, m, owner[s], err)
			}
			if r.Slot != s || r.Addr != owner[s] {
				t.Fatalf("GET %s on %s: MOVED %d %s, want slot %d at %s", key, m, r.Slot, r.Addr, s, owner[s])
			}
			moved++
		}
	}
	if moved < 30 {
		t.Fatalf("saw %d MOVED replies, want at least one per key", moved)
	}
}

func TestMultiKeyCommandsNeedOneSlot(t *testing.T) {
	cc := clusterClient(t)
	c := ctx(t)
	owner, _ := owners(t, cc)
	a, b := "part09:cross:a", "part09:cross:b"
	if slot.Of(a) == slot.Of(b) {
		t.Fatalf("test keys share slot %d", slot.Of(a))
	}
	// On the node that owns a, and through the cluster client: CROSSSLOT.
	node := redis.NewClient(&redis.Options{Addr: owner[slot.Of(a)], MaxRetries: -1})
	defer node.Close()
	for name, err := range map[string]error{
		"plain client on a's owner": node.MSet(c, a, "1", b, "2").Err(),
		"cluster client":            cc.MSet(c, a, "1", b, "2").Err(),
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
			t.Errorf("%s: MSET across slots = %v, want CROSSSLOT", name, err)
		}
	}
	if n, _ := cc.Exists(c, a, b).Result(); n != 0 {
		t.Fatalf("a rejected MSET wrote %d keys", n)
	}

	// With a hash tag both keys live in one slot and the same MSET succeeds.
	ta, tb := "part09:cross:{user:1001}:name", "part09:cross:{user:1001}:plan"
	t.Cleanup(func() { cc.Del(context.Background(), ta, tb) })
	if slot.Of(ta) != slot.Of(tb) {
		t.Fatal("tagged keys in different slots")
	}
	if err := cc.MSet(c, ta, "ada", tb, "pro").Err(); err != nil {
		t.Fatalf("MSET with hash tag: %v", err)
	}
	vals, err := cc.MGet(c, ta, tb).Result()
	if err != nil || fmt.Sprint(vals) != "[ada pro]" {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
}
