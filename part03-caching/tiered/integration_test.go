//go:build integration

package tiered

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

func TestIntegrationInvalidationReachesOtherInstancesL1(t *testing.T) {
	rdb, prefix := fixture.Redis(t)
	testInvalidationReachesOtherL1s(t, rdb, prefix)
}

// TestIntegrationLostInvalidationBound runs the bound test on real Redis over TCP:
// the silent instance's subscriber connections become black holes (writes vanish,
// reads return only at their deadline), as in a network partition.
func TestIntegrationLostInvalidationBound(t *testing.T) {
	_, prefix := fixture.Redis(t)
	client := func(hole *atomic.Bool) *redis.Client {
		o := &redis.Options{Addr: stack.RedisAddr()}
		if hole != nil {
			o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return blackholeConn{c, hole}, nil
			}
		}
		rdb := redis.NewClient(o)
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}
	testLostInvalidationBound(t, client, prefix, 400*time.Millisecond)
}

// TestIntegrationResubscribeClearsL1 kills this test's own subscriber connection on
// the shared Redis (by client ID, never by type: other tests subscribe too) and
// checks the instance clears its L1 when go-redis re-subscribes.
func TestIntegrationResubscribeClearsL1(t *testing.T) {
	admin, prefix := fixture.Redis(t)
	name := strings.ReplaceAll(strings.TrimSuffix(prefix, ":"), ":", ".")
	rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), ClientName: name})
	t.Cleanup(func() { _ = rdb.Close() })

	src := newSource(product{"p1", 100})
	c := newCache(t, rdb, prefix, src.load)
	ctx := context.Background()
	_, err := c.Get(ctx, "p1")
	require.NoError(t, err)
	list, err := admin.ClientList(ctx).Result()
	require.NoError(t, err)
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, " flags=P ") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err())
			killed++
		}
	}
	require.Equal(t, 1, killed, "subscriber connections named %s:\n%s", name, list)
	waitFor(t, "re-subscription", func() bool { return c.Stats().Resubscribes >= 1 })
	_, ok := c.L1().Get("p1")
	require.False(t, ok, "L1 kept an entry across a reconnect")
	// And invalidations flow again on the new connection.
	waitFor(t, "L1 to serve again", c.Serving)
	_, err = c.Get(ctx, "p1")
	require.NoError(t, err)
	other := newCache(t, admin, prefix, src.load)
	require.NoError(t, other.Set(ctx, "p1", product{"p1", 5}))
	waitFor(t, "invalidation after reconnect", func() bool { _, ok := c.L1().Get("p1"); return !ok })
}
