package reshard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/pgretry"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// CatalogSchema is the catalog database's tables: the routing table every
// writer reads, and the state of a resharding in progress (one at a time).
const CatalogSchema = `
CREATE TABLE IF NOT EXISTS routing (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT  NOT NULL,
    spec  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS reshard (
    id        INTEGER  PRIMARY KEY CHECK (id = 1),
    from_spec TEXT     NOT NULL,
    to_spec   TEXT     NOT NULL,
    epoch     BIGINT   NOT NULL,           -- the routing epoch after the cutover
    phase     TEXT     NOT NULL,           -- start | backfill | catchup | cutover | cleanup | done
    cursors   BIGINT[] NOT NULL,           -- backfill: the last id copied, per source shard
    copied    BIGINT   NOT NULL DEFAULT 0, -- rows copied by the backfill
    applied   BIGINT   NOT NULL DEFAULT 0  -- ids re-copied by the catch-up
);`

// ShardSchema is what every shard database holds besides its users: the
// fence, the routing epoch whose writes it accepts.
const ShardSchema = pgshard.Schema + `
CREATE TABLE IF NOT EXISTS fence (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT  NOT NULL
);`

// Routing is the routing table's row: which router writers use, and its
// epoch, which every shard's fence must match for a write to land.
type Routing struct {
	Epoch  int64
	Spec   Spec
	Router shard.Router
}

// InitCatalog creates the catalog's tables and, if there is none, the
// routing row {epoch 1, spec}.
func InitCatalog(ctx context.Context, catalog *pgxpool.Pool, spec Spec) error {
	if _, err := spec.Router(); err != nil {
		return err
	}
	if _, err := catalog.Exec(ctx, CatalogSchema); err != nil {
		return fmt.Errorf("reshard: catalog schema: %w", err)
	}
	_, err := catalog.Exec(ctx, `INSERT INTO routing (id, epoch, spec) VALUES (1, 1, $1) ON CONFLICT (id) DO NOTHING`, spec.String())
	return err
}

// InitShard creates a shard's tables and, if it has none, its fence at epoch.
func InitShard(ctx context.Context, pool *pgxpool.Pool, epoch int64) error {
	if _, err := pool.Exec(ctx, ShardSchema); err != nil {
		return fmt.Errorf("reshard: shard schema: %w", err)
	}
	_, err := pool.Exec(ctx, `INSERT INTO fence (id, epoch) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, epoch)
	return err
}

// ReadRouting reads the routing table.
func ReadRouting(ctx context.Context, catalog *pgxpool.Pool) (Routing, error) {
	var r Routing
	var spec string
	if err := catalog.QueryRow(ctx, `SELECT epoch, spec FROM routing WHERE id = 1`).Scan(&r.Epoch, &spec); err != nil {
		return Routing{}, fmt.Errorf("reshard: read routing: %w", err)
	}
	sp, err := ParseSpec(spec)
	if err != nil {
		return Routing{}, err
	}
	r.Spec = sp
	r.Router, _ = sp.Router()
	return r, nil
}

// ErrStaleRoute is the answer of a shard whose fence is at another epoch than
// the writer's routing: the routing changed, and the write must be routed again.
var ErrStaleRoute = errors.New("reshard: the shard is fenced for another routing epoch")

// Writer writes users through the routing table. Every write is a transaction
// on its shard that first reads the fence FOR SHARE: a resharding's cutover
// takes the fence FOR UPDATE, so it waits for the writes in flight and holds
// back new ones, and once it has moved the epoch on, a write routed by the old
// table is refused instead of landing on a shard that no longer owns its key.
// The Writer then reads the routing table again and retries, until the
// routing table reaches the fence's epoch, ctx ends or StaleWait passes: a
// write either succeeds or returns an error, never vanishes. A write whose
// connection broke before its COMMIT was sent runs once more (fenced).
type Writer struct {
	catalog *pgxpool.Pool
	shards  []*pgxpool.Pool
	mu      sync.Mutex
	routing Routing
	// StaleWait bounds how long a write refused by a fence waits for the
	// routing table to reach the fence's epoch (default 10 s). A cutover
	// writes the routing a moment after it moves the fences; one that died
	// in between and is not resumed (Online.Run) would otherwise hold a
	// caller without a deadline for ever.
	StaleWait time.Duration
	// Rerouted counts writes refused by a fence and retried under a newer routing.
	Rerouted atomic.Int64
}

// staleRoute is a fence's refusal: the shard accepts epoch fence, the write
// was routed by epoch routed. It is ErrStaleRoute.
type staleRoute struct {
	shard         int
	fence, routed int64
}

func (e *staleRoute) Error() string {
	return fmt.Sprintf("%v: shard %d accepts epoch %d, the write was routed by epoch %d", ErrStaleRoute, e.shard, e.fence, e.routed)
}

func (e *staleRoute) Unwrap() error { return ErrStaleRoute }

// NewWriter reads the routing table and returns a writer over shards (by
// index: every shard the routing may name, now or after a resharding).
func NewWriter(ctx context.Context, catalog *pgxpool.Pool, shards []*pgxpool.Pool) (*Writer, error) {
	r, err := ReadRouting(ctx, catalog)
	if err != nil {
		return nil, err
	}
	return &Writer{catalog: catalog, shards: shards, routing: r}, nil
}

// Routing returns the routing the writer holds.
func (w *Writer) Routing() Routing {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.routing
}

// Put inserts or replaces u on the shard that owns it.
func (w *Writer) Put(ctx context.Context, u shard.User) error {
	return w.write(ctx, u.ID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, name, score) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, score = excluded.score`, u.ID, u.Name, u.Score)
		return err
	})
}

// Delete removes the user with id from the shard that owns it.
func (w *Writer) Delete(ctx context.Context, id int64) error {
	return w.write(ctx, id, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		return err
	})
}

func (w *Writer) write(ctx context.Context, id int64, do func(pgx.Tx) error) error {
	var giveUp time.Time // when a write refused by a fence stops waiting for the routing table
	for attempt := 0; ; attempt++ {
		r := w.Routing()
		s, err := r.Router.Route(ctx, id)
		if err != nil {
			return err
		}
		if s >= len(w.shards) {
			return fmt.Errorf("reshard: routing epoch %d names shard %d for key %d; the writer knows %d shards", r.Epoch, s, id, len(w.shards))
		}
		err = w.fenced(ctx, w.shards[s], s, r.Epoch, do)
		if !errors.Is(err, ErrStaleRoute) {
			if err != nil {
				return fmt.Errorf("reshard: write key %d on shard %d (routing epoch %d): %w", id, s, r.Epoch, err)
			}
			return nil
		}
		if attempt == 0 {
			w.Rerouted.Add(1)
			giveUp = time.Now().Add(cmpOr(w.StaleWait, 10*time.Second))
		}
		// The cutover commits the fences before the routing table: wait for
		// the table to catch up, a little longer each time.
		select {
		case <-ctx.Done():
			return fmt.Errorf("reshard: write key %d not done: %w (and then %w)", id, err, ctx.Err())
		case <-time.After(time.Duration(min(attempt+1, 20)) * time.Millisecond * time.Duration(1+rand.IntN(2))):
		}
		fresh, rerr := ReadRouting(ctx, w.catalog)
		if rerr != nil {
			return fmt.Errorf("reshard: write key %d not done: %w (and then %w)", id, err, rerr)
		}
		w.mu.Lock()
		if fresh.Epoch > w.routing.Epoch {
			w.routing = fresh
		}
		w.mu.Unlock()
		// Give up only on a routing table read after the wait: one the
		// cutover wrote while this write waited on its fence is tried.
		var stale *staleRoute
		if errors.As(err, &stale) && fresh.Epoch < stale.fence && !time.Now().Before(giveUp) {
			return fmt.Errorf("reshard: write key %d not done: waited %v for the routing table to reach shard %d's fence epoch %d; it is at epoch %d "+
				"(a cutover that moved the fences and did not write the routing: resume it with Online.Run): %w",
				id, cmpOr(w.StaleWait, 10*time.Second), s, stale.fence, fresh.Epoch, ErrStaleRoute)
		}
	}
}

// fenced runs do in a transaction on pool after checking the shard's fence is
// at epoch, and commits it. A transaction that fails on a broken connection
// before its COMMIT was sent cannot have committed (the server rolls back what
// a lost connection leaves open), so after the pool has dropped its
// connections it runs once more: the first write after a PostgreSQL restart
// would otherwise fail on an idle connection the restart closed (pgxpool pings
// only those idle for over a second). A COMMIT that fails is in doubt and is
// returned.
func (w *Writer) fenced(ctx context.Context, pool *pgxpool.Pool, s int, epoch int64, do func(pgx.Tx) error) error {
	for try := 0; ; try++ {
		committing := false
		err := func() error {
			tx, err := pool.Begin(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
			var at int64
			if err := tx.QueryRow(ctx, `SELECT epoch FROM fence WHERE id = 1 FOR SHARE`).Scan(&at); err != nil {
				return err
			}
			if at != epoch {
				return &staleRoute{shard: s, fence: at, routed: epoch}
			}
			if err := do(tx); err != nil {
				return err
			}
			committing = true
			return tx.Commit(ctx)
		}()
		if err == nil || ctx.Err() != nil || !pgretry.BrokenConn(err) {
			return err
		}
		pool.Reset()
		if committing || try > 0 {
			return err
		}
	}
}
