package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part09-hashing/slot"
)

// liveCluster checks slot.Of against the real cluster's CLUSTER KEYSLOT and
// shows a MOVED and a CROSSSLOT error. Slots are pure computation, so there is
// no stand-in: without a cluster the demo says so and skips this part.
func liveCluster(ctx context.Context, keys []string) {
	if err := stack.Reachable(stack.RedisCluster, 500*time.Millisecond); err != nil {
		fmt.Printf("Redis Cluster not reachable (%v): skipped the live CLUSTER KEYSLOT / MOVED / CROSSSLOT check; start it with `make up`.\n", err)
		return
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs()})
	defer cc.Close()
	fmt.Printf("Redis Cluster at %s (real):\n", strings.Join(stack.RedisClusterAddrs(), ","))
	agree := 0
	for _, k := range keys {
		got, err := cc.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			fmt.Println("  CLUSTER KEYSLOT failed:", err)
			return
		}
		if int(got) == slot.Of(k) {
			agree++
		}
	}
	fmt.Printf("  CLUSTER KEYSLOT agrees with slot.Of for %d/%d keys above\n", agree, len(keys))

	owner, err := slot.Owners(ctx, cc)
	if err != nil {
		fmt.Println("  skipping the MOVED demo:", err)
		return
	}
	key := "part09:demo:{user:1001}:profile"
	right, wrong := owner[slot.Of(key)], ""
	for _, a := range owner {
		if a != right {
			wrong = a
			break
		}
	}
	plain := redis.NewClient(&redis.Options{Addr: wrong, MaxRetries: -1})
	defer plain.Close()
	err = plain.Get(ctx, key).Err()
	red, ok := slot.ParseRedirect(fmt.Sprint(err))
	fmt.Printf("  GET %s on %s (not the owner) -> %v\n", key, wrong, err)
	fmt.Printf("    parsed: MOVED=%t slot %d (slot.Of=%d) to %s (owner per CLUSTER SHARDS: %s)\n",
		ok && !red.Ask, red.Slot, slot.Of(key), red.Addr, right)

	a, b := "part09:demo:a", "part09:demo:b"
	fmt.Printf("  MSET %s (slot %d) %s (slot %d) -> %v\n", a, slot.Of(a), b, slot.Of(b),
		cc.MSet(ctx, a, "1", b, "2").Err())
	ta, tb := "part09:demo:{user:1001}:name", "part09:demo:{user:1001}:plan"
	fmt.Printf("  MSET %s %s (both slot %d via the hash tag) -> %v\n", ta, tb, slot.Of(ta),
		cc.MSet(ctx, ta, "ada", tb, "pro").Err())
	cc.Del(ctx, ta, tb)
}
