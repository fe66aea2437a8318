package slot

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Owners asks the cluster (CLUSTER SHARDS) which master serves each slot and
// returns the masters' host:port per slot, as MOVED replies name them. A slot
// no master serves is "".
func Owners(ctx context.Context, c redis.Cmdable) (*[Count]string, error) {
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}
	var owner [Count]string
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Role != "master" {
				continue
			}
			host := n.Endpoint
			if host == "" || host == "?" {
				host = n.IP
			}
			addr := net.JoinHostPort(host, strconv.FormatInt(n.Port, 10))
			for _, r := range sh.Slots {
				for s := r.Start; s <= r.End && s < Count; s++ {
					owner[s] = addr
				}
			}
		}
	}
	return &owner, nil
}
