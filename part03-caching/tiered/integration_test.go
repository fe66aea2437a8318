//go:build integration

package tiered

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

func TestIntegrationInvalidationReachesOtherInstancesL1(t *testing.T) {
	rdb, prefix := fixture.Redis(t)
	testInvalidationReachesOtherL1s(t, rdb, prefix)
}

// TestIntegrationResubscribeClearsL1 kills this test's own subscriber connection on
// the shared Redis (by client ID, never by type: other tests subscribe too) and
// checks the instance clears its L1 when go-redis re-subscribes.
func TestIntegrationResubscribeClearsL1(t *testing.T) {
	admin, prefix := fixture.Redis(t)
	name := strings.ReplaceAll(strings.TrimSuffix(prefix, ":"), ":", ".")
	rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), ClientName: name})
	t.Cleanup(func() { _ = rdb.Close() })

	src := &source{m: map[string]product{"p1": {"p1", 100}}}
	c := newCache(t, rdb, prefix, src.load)
	ctx := context.Background()
	if _, err := c.Get(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, " flags=P ") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("found %d subscriber connections named %s, want 1:\n%s", killed, name, list)
	}
	waitFor(t, "re-subscription", func() bool { return c.Stats().Resubscribes >= 1 })
	if _, ok := c.L1().Get("p1"); ok {
		t.Fatal("L1 kept an entry across a reconnect")
	}
	// And invalidations flow again on the new connection.
	if _, err := c.Get(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	other := newCache(t, admin, prefix, src.load)
	if err := other.Set(ctx, "p1", product{"p1", 5}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "invalidation after reconnect", func() bool { _, ok := c.L1().Get("p1"); return !ok })
}
