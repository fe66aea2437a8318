package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// The demo's databases on the stack's PostgreSQL: three shards and a catalog
// (the directory, the one-table oracle). They are dropped and created again
// at every run, and left behind for a look with psql.
var (
	shardDBs  = []string{"part04_shard_0", "part04_shard_1", "part04_shard_2"}
	catalogDB = "part04_catalog"
)

// env is where the experiments keep users: three shards and one table holding
// every row (the oracle a scatter-gather must agree with), in PostgreSQL or in
// memory.
type env struct {
	pg       bool
	describe string // one line: which, and how to get the other
	shards   []shard.Store
	oracle   shard.Store
	table    shard.Table
	reset    func(ctx context.Context) error // empties every shard, the oracle and the directory
	close    func()
	// PostgreSQL only: the pools of the shards and of the catalog.
	shardPools  []*pgxpool.Pool
	catalogPool *pgxpool.Pool
}

func openEnv(ctx context.Context, auto bool) (*env, error) {
	if auto && stack.Reachable(stack.Postgres, 2*time.Second) == nil {
		return openPostgres(ctx)
	}
	e := &env{describe: "shards: 3 in-memory stores in this process (PostgreSQL not reachable at " + pgshard.Redact(stack.DatabaseURL()) +
		"; `make up SERVICES=postgres` and run again for real databases)", close: func() {}}
	if !auto {
		e.describe = "shards: 3 in-memory stores in this process (-stack off)"
	}
	e.reset = func(context.Context) error {
		e.shards = []shard.Store{shard.NewMemory(shardDBs[0]), shard.NewMemory(shardDBs[1]), shard.NewMemory(shardDBs[2])}
		e.oracle = shard.NewMemory(catalogDB)
		e.table = shard.NewMemoryTable()
		return nil
	}
	return e, e.reset(ctx)
}

func openPostgres(ctx context.Context) (*env, error) {
	url := stack.DatabaseURL()
	if err := pgshard.Provision(ctx, url, append(shardDBs, catalogDB)...); err != nil {
		return nil, err
	}
	var pools []*pgxpool.Pool
	e := &env{pg: true, close: func() {
		for _, p := range pools {
			p.Close()
		}
	}}
	var stores []*pgshard.Store
	for _, name := range append(shardDBs, catalogDB) {
		p, err := pgshard.Pool(ctx, url, name, 8)
		if err != nil {
			e.close()
			return nil, err
		}
		pools = append(pools, p)
		s := pgshard.NewStore(p, name)
		if err := s.CreateSchema(ctx); err != nil {
			e.close()
			return nil, err
		}
		stores = append(stores, s)
	}
	table, err := pgshard.NewTable(ctx, pools[3])
	if err != nil {
		e.close()
		return nil, err
	}
	e.shards = []shard.Store{stores[0], stores[1], stores[2]}
	e.shardPools, e.catalogPool = pools[:3], pools[3]
	e.oracle, e.table = stores[3], table
	e.describe = fmt.Sprintf("shards: PostgreSQL databases %s, %s, %s and %s (directory, one-table oracle) on %s",
		shardDBs[0], shardDBs[1], shardDBs[2], catalogDB, pgshard.Redact(url))
	e.reset = func(ctx context.Context) error {
		for _, s := range stores {
			if err := s.Truncate(ctx); err != nil {
				return err
			}
		}
		return table.Truncate(ctx)
	}
	return e, nil
}
