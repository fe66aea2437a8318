package lfu

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// LRUAccuracy is how close allkeys-lru came to a true LRU with one maxmemory-samples
// value: of the keys it evicted, the share a true LRU would have evicted too (the
// longest idle).
type LRUAccuracy struct {
	Samples   int
	Evicted   int64 // evicted_keys during the fill
	AsTrueLRU int64 // of those, keys among the Evicted longest-idle ones
}

// Share is AsTrueLRU / Evicted.
func (a LRUAccuracy) Share() float64 { return float64(a.AsTrueLRU) / float64(a.Evicted) }

func lruKey(i int) string { return fmt.Sprintf("lru:idle:%05d", i) }

// lruAccuracy loads cfg.LRUKeys keys whose idle times are set exactly (RESTORE …
// IDLETIME i gives key i an idle time of i seconds, so the LRU order is known without
// waiting), caps maxmemory at the memory in use, writes cfg.LRUKeys/2 new keys, and
// compares what Redis evicted with what a true LRU would have: the longest-idle keys.
func lruAccuracy(ctx context.Context, rdb *redis.Client, cfg Config, samples int) (LRUAccuracy, error) {
	row := LRUAccuracy{Samples: samples}
	if err := reset(ctx, rdb, cfg, "allkeys-lru", samples); err != nil {
		return row, err
	}
	value := strings.Repeat("x", cfg.ValueSize)
	if err := rdb.Set(ctx, "lru:template", value, 0).Err(); err != nil {
		return row, err
	}
	dump, err := rdb.Dump(ctx, "lru:template").Result()
	if err != nil {
		return row, err
	}
	if err := rdb.Del(ctx, "lru:template").Err(); err != nil {
		return row, err
	}
	if err := pipelined(ctx, rdb, cfg.LRUKeys, func(p redis.Pipeliner, i int) {
		p.Do(ctx, "RESTORE", lruKey(i), 0, dump, "IDLETIME", i)
	}); err != nil {
		return row, fmt.Errorf("RESTORE … IDLETIME: %w", err)
	}
	used, err := usedMemory(ctx, rdb)
	if err != nil {
		return row, err
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used, 10)).Err(); err != nil {
		return row, err
	}
	if err := pipelined(ctx, rdb, cfg.LRUKeys/2, func(p redis.Pipeliner, i int) { p.Set(ctx, fillKey(i), value, 0) }); err != nil {
		return row, err
	}
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		return row, err
	}
	row.Evicted = infoInt(info, "evicted_keys")
	cmds := make([]*redis.IntCmd, cfg.LRUKeys)
	if err := pipelined(ctx, rdb, cfg.LRUKeys, func(p redis.Pipeliner, i int) { cmds[i] = p.Exists(ctx, lruKey(i)) }); err != nil {
		return row, err
	}
	oldest := cfg.LRUKeys - int(row.Evicted) // a true LRU evicts keys oldest..Keys-1
	for i, c := range cmds {
		if c.Val() == 0 && i >= oldest {
			row.AsTrueLRU++
		}
	}
	return row, nil
}
