package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

// The article's keys, untagged and tagged.
var clusterKeys = [][2]string{
	{"rate:127.0.0.1:log", "rate:127.0.0.1:metadata"},
	{"{rate:127.0.0.1}:log", "{rate:127.0.0.1}:metadata"},
}

func clusterDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== Redis Cluster: 16,384 hash slots, hash tags and CROSSSLOT ==")
	var rt counter
	cc, why := openCluster(ctx, o.redis, func(c *redis.Client) { c.AddHook(&rt) })
	tw := table(w)
	fmt.Fprintln(tw, "keys\tslots (CRC16 mod 16384)\ta script over both keys")
	for _, pair := range clusterKeys {
		s0, s1 := redislimit.Slot(pair[0]), redislimit.Slot(pair[1])
		result := "needs the real Redis Cluster (" + why + "; `make up` or REDIS_CLUSTER_ADDRS)"
		if cc != nil {
			for i, k := range pair {
				got, err := cc.ClusterKeySlot(ctx, k).Result()
				if err != nil {
					return err
				}
				if int(got) != []int{s0, s1}[i] {
					return fmt.Errorf("CLUSTER KEYSLOT %s = %d, Slot says %d", k, got, []int{s0, s1}[i])
				}
			}
			n, err := cc.Eval(ctx, "return #KEYS", pair[:]).Int()
			if err != nil {
				result = "error: " + err.Error()
			} else {
				result = "ok, the script saw " + strconv.Itoa(n) + " keys"
			}
		}
		fmt.Fprintf(tw, "%s + %s\t%d, %d\t%s\n", pair[0], pair[1], s0, s1, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cc == nil {
		fmt.Fprintln(w)
		return nil
	}
	defer cc.Close()
	if err := sameNodeCrossSlot(ctx, w, cc); err != nil {
		return err
	}
	return limitersOnCluster(ctx, w, cc, &rt)
}

// sameNodeCrossSlot shows that CROSSSLOT is about slots, not nodes: two
// untagged keys on one master still fail.
func sameNodeCrossSlot(ctx context.Context, w io.Writer, cc *redis.ClusterClient) error {
	a := "rate:127.0.0.1:log"
	owner, err := cc.MasterForKey(ctx, a)
	if err != nil {
		return err
	}
	for i := range 10_000 {
		b := "rate:127.0.0.1:meta" + strconv.Itoa(i)
		if redislimit.Slot(b) == redislimit.Slot(a) {
			continue
		}
		o2, err := cc.MasterForKey(ctx, b)
		if err != nil {
			return err
		}
		if o2.Options().Addr != owner.Options().Addr {
			continue
		}
		_, err = cc.Eval(ctx, "return #KEYS", []string{a, b}).Result()
		fmt.Fprintf(w, "same master %s, slots %d and %d: %v\n", owner.Options().Addr, redislimit.Slot(a), redislimit.Slot(b), err)
		return nil
	}
	return fmt.Errorf("no key on the same master as %s", a)
}

// limitersOnCluster runs every limiter on the cluster: tagged keys, one
// round trip per check.
func limitersOnCluster(ctx context.Context, w io.Writer, cc *redis.ClusterClient, rt *counter) error {
	tw := table(w)
	fmt.Fprintln(tw, "limiter on the cluster\tkey\tslot\tmaster\tadmitted of 5 (limit 3)\tround trips per check")
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, algo := range redislimit.Algorithms {
		l, err := redislimit.New(cc, algo, quota.Policy{Limit: 3, Window: time.Minute}, "rl:cluster:"+run+":"+algo.String()+":")
		if err != nil {
			return err
		}
		if err := l.Load(ctx); err != nil {
			return err
		}
		owner, err := cc.MasterForKey(ctx, l.Key("203.0.113.7"))
		if err != nil {
			return err
		}
		rt.n.Store(0)
		admitted := 0
		for range 5 {
			d, err := l.Allow(ctx, "203.0.113.7")
			if err != nil {
				return err
			}
			if d.Allowed {
				admitted++
			}
		}
		trips := float64(rt.n.Load()) / 5
		if err := cc.Del(ctx, l.Key("203.0.113.7")).Err(); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%.2f\n", algo, l.Key("203.0.113.7"), redislimit.Slot(l.Key("203.0.113.7")), owner.Options().Addr, admitted, trips)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}
