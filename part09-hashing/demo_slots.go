package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part09-hashing/slot"
)

// slotExamples covers the article's keys, plain keys, hash tags and the edge
// cases: an empty tag ("{}") and a lone "{" hash the whole key, only the first
// tag counts.
var slotExamples = []string{
	"user:1001:profile", "user:1001:cart", "{user:1001}:profile", "{user:1001}:cart", "user:1001",
	"foo", "foo{}{bar}", "foo{bar}{zap}", "foo{", "{{x}}", "",
}

// The article's pair of keys, without and with a hash tag.
const (
	untaggedA, untaggedB = "user:1001:profile", "user:1001:cart"
	taggedA, taggedB     = "{user:1001}:profile", "{user:1001}:cart"
)

// slotsDemo prints slots computed here, then checks them and the multi-key
// rules against the real cluster when it answers.
func slotsDemo(ctx context.Context, w io.Writer, _ config) error {
	section(w, "Redis Cluster slots: CRC16-XMODEM(hash tag) mod %d", slot.Count)
	var rows [][]string
	for _, k := range slotExamples {
		rows = append(rows, []string{strconv.Quote(k), strconv.Quote(slot.HashTag(k)), strconv.Itoa(slot.Of(k))})
	}
	if err := table(w, []string{"key", "hashes", "slot"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "article's pair: %s → slot %d, %s → slot %d: no MULTI/EXEC or script may touch both; tagged, both are slot %d.\n",
		untaggedA, slot.Of(untaggedA), untaggedB, slot.Of(untaggedB), slot.Of(taggedA))

	if err := stack.Reachable(stack.RedisCluster, 500*time.Millisecond); err != nil {
		fmt.Fprintf(w, "Redis Cluster not reachable (%v): skipped the live CLUSTER KEYSLOT / MOVED / CROSSSLOT / MULTI check; start it with `make up` or `scripts/stack up redis-cluster` (slots need no stand-in: they are computed).\n", err)
		return nil
	}
	redis.SetLogger(quiet{}) // a node dying mid-demo shows as one error, not pages of reconnect logs
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: stack.RedisClusterAddrs(),
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: 1})
	defer cc.Close()
	fmt.Fprintf(w, "Redis Cluster at %s (real):\n", strings.Join(stack.RedisClusterAddrs(), ","))
	if err := liveCluster(ctx, w, cc); err != nil {
		return fmt.Errorf("redis cluster at %s: %w (see `scripts/stack status`; a paused node: `scripts/stack resume redis-cluster-N`; a dead one: `scripts/stack up redis-cluster`)",
			strings.Join(stack.RedisClusterAddrs(), ","), err)
	}
	return nil
}

// liveCluster compares slot.Of with CLUSTER KEYSLOT, shows a MOVED reply, and
// runs the article's multi-key cases: across slots they fail (CROSSSLOT, or
// MOVED then EXECABORT), with a hash tag MULTI/EXEC and a Lua script succeed.
func liveCluster(ctx context.Context, w io.Writer, cc *redis.ClusterClient) error {
	agree := 0
	for _, k := range slotExamples {
		got, err := cc.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			return fmt.Errorf("CLUSTER KEYSLOT: %w", err)
		}
		if int(got) == slot.Of(k) {
			agree++
		}
	}
	fmt.Fprintf(w, "  CLUSTER KEYSLOT agrees with slot.Of for %d/%d keys above\n", agree, len(slotExamples))

	owner, err := slot.Owners(ctx, cc)
	if err != nil {
		return err
	}
	right, wrong := owner[slot.Of(taggedA)], ""
	for _, a := range owner {
		if a != right {
			wrong = a
			break
		}
	}
	node := func(addr string) *redis.Client {
		return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	}
	plain := node(wrong)
	defer plain.Close()
	err = plain.Get(ctx, taggedA).Err()
	red, ok := slot.ParseRedirect(fmt.Sprint(err))
	if !ok {
		return fmt.Errorf("GET %s on %s: %v, want a MOVED reply", taggedA, wrong, err)
	}
	fmt.Fprintf(w, "  GET %s on %s (not the owner) -> %v\n", taggedA, wrong, err)
	fmt.Fprintf(w, "    parsed: MOVED=%t slot %d (slot.Of=%d) to %s (owner per CLUSTER SHARDS: %s)\n",
		!red.Ask, red.Slot, slot.Of(taggedA), red.Addr, right)

	fmt.Fprintf(w, "  MSET %s %s -> %v\n", untaggedA, untaggedB, cc.MSet(ctx, untaggedA, "p", untaggedB, "c").Err())
	home := node(owner[slot.Of(untaggedA)])
	defer home.Close()
	fmt.Fprintf(w, "  MULTI; SET %s; SET %s; EXEC on %s (owner of the first) -> %s\n",
		untaggedA, untaggedB, owner[slot.Of(untaggedA)], txResult(home.TxPipelined(ctx, setBoth(ctx, untaggedA, untaggedB))))
	fmt.Fprintf(w, "  go-redis ClusterClient.TxPipelined, same keys -> %s (go-redis refuses it before sending)\n",
		txResult(cc.TxPipelined(ctx, setBoth(ctx, untaggedA, untaggedB))))
	script := redis.NewScript(`redis.call("SET", KEYS[1], ARGV[1]); redis.call("SET", KEYS[2], ARGV[1]); return redis.call("EXISTS", KEYS[1], KEYS[2])`)
	fmt.Fprintf(w, "  EVAL script over KEYS %s %s -> %v\n", untaggedA, untaggedB, script.Run(ctx, cc, []string{untaggedA, untaggedB}, "x").Err())

	defer cc.Del(context.WithoutCancel(ctx), taggedA, taggedB)
	fmt.Fprintf(w, "  MULTI; SET %s; SET %s; EXEC via ClusterClient (slot %d on %s) -> %s\n",
		taggedA, taggedB, slot.Of(taggedA), right, txResult(cc.TxPipelined(ctx, setBoth(ctx, taggedA, taggedB))))
	n, err := script.Run(ctx, cc, []string{taggedA, taggedB}, "x").Int()
	fmt.Fprintf(w, "  EVAL script over KEYS %s %s -> EXISTS = %d, err %v\n", taggedA, taggedB, n, err)
	if err != nil {
		return fmt.Errorf("EVAL with a hash tag: %w", err)
	}
	return nil
}

// setBoth queues SET a and SET b in one transaction.
func setBoth(ctx context.Context, a, b string) func(redis.Pipeliner) error {
	return func(p redis.Pipeliner) error {
		p.Set(ctx, a, "v", time.Minute)
		p.Set(ctx, b, "v", time.Minute)
		return nil
	}
}

// txResult formats a transaction's outcome: the replies when it ran, else
// the commands whose own error differs from the transaction's, then that error.
func txResult(cmds []redis.Cmder, err error) string {
	var out []string
	for _, c := range cmds {
		switch {
		case err == nil:
			out = append(out, c.(*redis.StatusCmd).Val())
		case c.Err() != nil && c.Err().Error() != err.Error():
			out = append(out, fmt.Sprintf("%s %s: %v", strings.ToUpper(c.Name()), c.Args()[1], c.Err()))
		}
	}
	if err != nil {
		out = append(out, err.Error())
	}
	return strings.Join(out, "; ")
}

// quiet drops go-redis's internal log lines.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
