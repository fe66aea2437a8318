//go:build integration

package reshard

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/internal/pgtest"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// rig is a catalog and three shards, the users preloaded on the first two
// under jump hash, and a writer.
type rig struct {
	names   []string // catalog, shard 0, 1, 2
	catalog *pgxpool.Pool
	shards  []*pgxpool.Pool
	load    *Workload
}

func newRig(t *testing.T, preload int, configure ...func(*pgxpool.Config)) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{names: pgtest.Names(t, 4)}
	r.catalog = pgtest.Pool(t, r.names[0], configure...)
	require.NoError(t, InitCatalog(ctx, r.catalog, JumpSpec(2)))
	for _, n := range r.names[1:] {
		p := pgtest.Pool(t, n, configure...)
		r.shards = append(r.shards, p)
	}
	for _, p := range r.shards[:2] {
		require.NoError(t, InitShard(ctx, p, 1))
	}
	users := make([]shard.User, preload)
	for i := range users {
		users[i] = shard.User{ID: int64(i + 1), Name: fmt.Sprint("pre-", i+1), Score: int64(i % 1000)}
	}
	stores := []shard.Store{pgshard.NewStore(r.shards[0], "0"), pgshard.NewStore(r.shards[1], "1")}
	c, err := shard.NewCluster(shard.Jump{N: 2}, stores...)
	require.NoError(t, err)
	require.NoError(t, c.Load(ctx, users))
	w, err := NewWriter(ctx, r.catalog, r.shards)
	require.NoError(t, err)
	r.load = &Workload{W: w, NextID: int64(preload) + 1, OpTimeout: 3 * time.Second}
	r.load.Preload(users)
	return r
}

func (r *rig) online() *Online {
	return &Online{Catalog: r.catalog, Shards: r.shards, Names: r.names[1:], Batch: 200, StepTimeout: 3 * time.Second}
}

// startWriter runs the workload until the returned stop is called.
func (r *rig) startWriter() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.load.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

// verify checks the final layout against the new routing and the ledger and
// returns the report line.
func (r *rig) verify(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	routing, err := ReadRouting(ctx, r.catalog)
	require.NoError(t, err)
	assert.Equal(t, JumpSpec(3), routing.Spec, "the routing table names the new layout")
	layout, err := Check(ctx, r.shards, routing.Router)
	require.NoError(t, err)
	lost, unexpected, examples := r.load.Verify(layout)
	assert.Zero(t, lost, "acknowledged writes lost: %v", examples)
	assert.Zero(t, unexpected, "rows nobody wrote: %v", examples)
	assert.Zero(t, layout.Duplicated, "ids on two shards")
	assert.Zero(t, layout.Misplaced, "rows on a shard the routing does not name")
	for _, err := range r.load.FirstErrors {
		assert.Regexp(t, `reshard: write key \d+ (on shard \d+ \(routing epoch \d+\)|not done)`, err.Error(), "a failed write says which key and why")
	}
	return fmt.Sprintf("rows %d, writes during the move %d acknowledged + %d failed, lost %d, duplicated %d, misplaced %d, rerouted %d",
		layout.Rows, r.load.Acked, r.load.Failed, lost, layout.Duplicated, layout.Misplaced, r.load.W.Rerouted.Load())
}

// TestOnlineReshard moves 2 → 3 shards (jump hash) while a writer inserts,
// updates and deletes: nothing acknowledged is lost, nothing is on two shards
// or on the wrong one, and writes routed by the old table during the cutover
// are refused by the fence and retried under the new one.
func TestOnlineReshard(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 5000)
	o := r.online()
	o.Pause = 5 * time.Millisecond // let the writer write during the backfill
	require.NoError(t, o.Begin(ctx, JumpSpec(3)))
	stop := r.startWriter()
	rep, err := o.Run(ctx)
	time.Sleep(100 * time.Millisecond) // writes under the new routing
	stop()
	require.NoError(t, err)
	assert.Positive(t, rep.Copied)
	assert.Equal(t, 1, rep.Attempts)
	assert.Positive(t, rep.Deleted, "moved rows left their old shards")
	assert.Zero(t, r.load.Failed, "no write failed: %v", r.load.FirstErrors)
	line := r.verify(t)
	t.Logf("online 2→3: copied %d, catch-up applied %d, freeze %v, %s", rep.Copied, rep.Applied, rep.Freeze, line)
	assert.EqualError(t, o.Begin(ctx, JumpSpec(3)), `reshard: the routing is {"kind":"jump","shards":3} already`)
	assert.EqualError(t, o.Begin(ctx, JumpSpec(4)), "reshard: jump hash, 4 shards needs 4 shards; have 3 pools and 3 names")
}

// A writer inserting new ids faster than the backfill copies them does not
// keep the backfill going: it copies up to the highest id there was when it
// started, and the slot carries the rest to the catch-up. Here every backfill
// batch is followed by a batch's worth of new rows on the shard it reads;
// without the bound the backfill chased them until the deadline (the fault
// tests met it on a quiet machine: 5,400 batches in 2 minutes).
func TestBackfillEndsWhileRowsAreInserted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRig(t, 400)
	o := r.online()
	o.Batch = 50
	next := int64(1_000_000)
	batches := 0
	o.Progress = func(e Event) {
		if e.Phase != "backfill" {
			return
		}
		batches++
		_, err := r.shards[e.Shard].Exec(ctx, `INSERT INTO users (id, name, score) SELECT g, 'late', 0 FROM generate_series($1::bigint, $1::bigint + 49) g`, next)
		assert.NoError(t, err)
		next += 50
	}
	require.NoError(t, o.Begin(ctx, JumpSpec(3)))
	_, err := o.Run(ctx)
	require.NoError(t, err, "the resharding finished within its minute")
	assert.LessOrEqual(t, batches, 400/50+2, "backfill batches: the preloaded rows' and no more")
}

// A killed resharder's backend holds its replication slot until PostgreSQL
// notices the connection ended; until then reading the slot fails with
// SQLSTATE 55006 ("replication slot ... is active for PID n"). Run treats it
// as a reason to resume, within its budget: here another session holds shard
// 0's slot (a walsender streaming from it, as a killed resharder's backend
// would), first for longer than a budget of 2 resumes (Run then returns the
// error), then until Run's first resume, when the session ends.
func TestRunResumesWhileAnotherSessionHoldsTheSlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRig(t, 400)
	o := r.online()
	require.NoError(t, o.Begin(ctx, JumpSpec(3)))
	first, stopFirst := context.WithCancel(ctx)
	o.Progress = func(e Event) {
		if e.Phase == "backfill" {
			stopFirst() // the slots exist, one batch is copied
		}
	}
	_, err := o.Run(first)
	require.ErrorIs(t, err, context.Canceled)

	holder := holdSlot(t, ctx, r.names[1], o.slot(0))
	var busy []error
	o.Progress = func(e Event) {
		if e.Phase == "resume" {
			busy = append(busy, e.Err)
		}
	}
	o.Resumes = 2
	rep, err := o.Run(ctx)
	assert.Equal(t, 2, rep.Resumes, "the budget spent")
	require.Error(t, err, "the slot stayed held")
	assert.Regexp(t, `reshard: shard 0: (read|decode) slot part04_reshard_\w+: ERROR: replication slot "part04_reshard_\w+" is active for PID \d+ \(SQLSTATE 55006\)`, err.Error())
	assert.Len(t, busy, 2)

	busy = nil
	o.Resumes = 0 // the default budget
	o.Progress = func(e Event) {
		if e.Phase == "resume" {
			busy = append(busy, e.Err)
			if len(busy) == 1 {
				assert.NoError(t, holder.Close(ctx), "the holding session ends")
			}
		}
	}
	rep, err = o.Run(ctx)
	require.NoError(t, err, "resumed once the slot was free")
	require.NotEmpty(t, busy)
	assert.ErrorContains(t, busy[0], "is active for PID")
	assert.Equal(t, len(busy), rep.Resumes)
	t.Logf("resumed %d times while the slot was held or being released; %s", rep.Resumes, r.verify(t))
}

// holdSlot opens a replication connection to database name and starts
// streaming from slot, which holds the slot until the connection is closed
// (at cleanup at the latest).
func holdSlot(t *testing.T, ctx context.Context, name, slot string) *pgconn.PgConn {
	t.Helper()
	url, err := pgshard.URL(stack.DatabaseURL(), name)
	require.NoError(t, err)
	cfg, err := pgconn.ParseConfig(url)
	require.NoError(t, err)
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	conn.Frontend().Send(&pgproto3.Query{String: fmt.Sprintf("START_REPLICATION SLOT %s LOGICAL 0/0", slot)})
	require.NoError(t, conn.Frontend().Flush())
	for {
		msg, err := conn.ReceiveMessage(ctx)
		require.NoError(t, err)
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
			return conn
		case *pgproto3.ErrorResponse:
			require.FailNow(t, "START_REPLICATION", "%v", pgconn.ErrorResponseToPgError(m))
		}
	}
}

// A cutover that moved the fences and died before writing the routing table,
// never resumed: a write routed by the old table is refused by the fence and
// waits for the routing table to catch up, which it never does. The write
// gives up after the Writer's StaleWait, even for a caller without a
// deadline, and says what it waited for.
func TestWriterGivesUpOnAFenceTheRoutingNeverReaches(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 10)
	for _, p := range r.shards[:2] {
		_, err := p.Exec(ctx, `UPDATE fence SET epoch = 2 WHERE id = 1`)
		require.NoError(t, err)
	}
	w := r.load.W
	w.StaleWait = 500 * time.Millisecond
	noDeadline, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Put(noDeadline, shard.User{ID: 3, Name: "stuck", Score: 1}) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cancel()
		require.FailNow(t, "Put still waiting after a minute for a routing table that never changes", "then cancelled: %v", <-done)
	}
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrStaleRoute)
	assert.Regexp(t, `^reshard: write key 3 not done: waited 500ms for the routing table to reach shard [01]'s fence epoch 2; it is at epoch 1 \(a cutover that moved the fences and did not write the routing: resume it with Online\.Run\)`, err.Error())
	assert.EqualValues(t, 1, w.Rerouted.Load())
}

// Two resharders started on one catalog (a second process, its own pools):
// one moves the rows, the other waits on the catalog's resharder lock and
// finds the resharding done, or gives up when its resume budget is spent.
// Without the lock both moved rows in 6 of 6 runs (one resumed 14 times past
// the other's slot, SQLSTATE 55006): each confirms slot changes the other
// has not copied yet and recopies rows out of order, and 2 of the 6 lost
// acknowledged writes (2 and 20: deletes undone, updates reverted).
func TestRunTwoReshardersAtOnceOneMovesTheRows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRig(t, 3000)
	first := r.online()
	require.NoError(t, first.Begin(ctx, JumpSpec(3)))
	second := &Online{Catalog: pgtest.Pool(t, r.names[0]), Names: r.names[1:], Batch: first.Batch, StepTimeout: first.StepTimeout}
	for _, n := range r.names[1:] {
		second.Shards = append(second.Shards, pgtest.Pool(t, n))
	}
	var mu sync.Mutex
	moved := map[int]bool{} // which resharder copied rows or cut over
	var waits []error       // why a resharder resumed
	for i, o := range []*Online{first, second} {
		o.Pause = 5 * time.Millisecond
		o.Progress = func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Phase {
			case "backfill", "catchup", "cutover":
				moved[i] = true
			case "resume":
				waits = append(waits, e.Err)
			}
		}
	}
	stop := r.startWriter()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, o := range []*Online{first, second} {
		wg.Go(func() { _, errs[i] = o.Run(ctx) })
	}
	wg.Wait()
	stop()
	assert.Len(t, moved, 1, "one resharder moved the rows")
	for _, err := range errs {
		if err != nil {
			assert.ErrorIs(t, err, ErrResharderRunning)
		}
	}
	require.NotEmpty(t, waits, "the other waited")
	for _, err := range waits {
		assert.Regexp(t, `^reshard: another resharder is running on this catalog \(its session: PID [1-9]\d*\)$`, err.Error())
	}
	t.Logf("Run errors %v; the other resumed %d times; %s", errs, len(waits), r.verify(t))
}

// A write that waited on a fence past its StaleWait gives up only if the
// routing table, read after the wait, still lags the fence: here the write is
// refused by shard 0's fence (epoch 2, the routing at 1) and, while it reads
// the routing again, a cutover attempt takes the fence again; the write
// waits on it past the StaleWait, and the attempt writes the routing table
// before it lets go. The
// write goes through under the new routing; it failed before, on the routing
// it had read before the wait.
func TestWriterTriesTheRoutingWrittenWhileItWaitedOnTheFence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRig(t, 10)
	w := r.load.W
	w.StaleWait = 300 * time.Millisecond
	var id int64 = 1
	for ; ; id++ { // a key on shard 0
		s, err := w.Routing().Router.Route(ctx, id)
		require.NoError(t, err)
		if s == 0 {
			break
		}
	}
	for _, p := range r.shards[:2] {
		_, err := p.Exec(ctx, `UPDATE fence SET epoch = 2 WHERE id = 1`)
		require.NoError(t, err)
	}
	routingLock, err := r.catalog.Begin(ctx) // holds the write's next read of the routing
	require.NoError(t, err)
	defer func() { _ = routingLock.Rollback(ctx) }()
	_, err = routingLock.Exec(ctx, `LOCK TABLE routing IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- w.Put(ctx, shard.User{ID: id, Name: "waited", Score: 1}) }()
	for w.Rerouted.Load() == 0 { // refused once
		require.NoError(t, ctx.Err())
		time.Sleep(time.Millisecond)
	}
	cutover, err := r.shards[0].Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = cutover.Rollback(ctx) }()
	_, err = cutover.Exec(ctx, `UPDATE fence SET epoch = 2 WHERE id = 1`)
	require.NoError(t, err)
	require.NoError(t, routingLock.Commit(ctx)) // the write reads epoch 1 and waits on the fence
	for {
		var waiting int
		require.NoError(t, r.shards[0].QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		if waiting > 0 {
			break
		}
		require.NoError(t, ctx.Err())
		time.Sleep(time.Millisecond)
	}
	time.Sleep(2 * w.StaleWait) // past it, waiting on the fence
	_, err = r.catalog.Exec(ctx, `UPDATE routing SET epoch = 2 WHERE id = 1`)
	require.NoError(t, err)
	require.NoError(t, cutover.Commit(ctx))
	select {
	case err = <-done:
	case <-ctx.Done():
		require.FailNow(t, "Put did not return")
	}
	require.NoError(t, err, "the routing table had caught up")
	assert.EqualValues(t, 2, w.Routing().Epoch)
	var name string
	require.NoError(t, r.shards[0].QueryRow(ctx, `SELECT name FROM users WHERE id = $1`, id).Scan(&name))
	assert.Equal(t, "waited", name)
}
