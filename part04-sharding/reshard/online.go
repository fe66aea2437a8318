package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/pgretry"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// Online moves rows to a new routing while writers keep writing, in the steps
// of Vitess's MoveTables and Reshard, each resumable after a crash from state
// kept in the catalog:
//
//  1. start: a logical replication slot on every source shard (test_decoding),
//     so every change committed from now on can be read back in commit order.
//  2. backfill: copy the rows whose new shard differs, in id order, batch by
//     batch, with the last id copied saved after each batch.
//  3. catch-up: read the slots' changes and copy each changed id again (the
//     row as it is now on its source, or its absence), then confirm the slot
//     past them; repeated until a round finds little to do. Copying the
//     current row makes a change safe to apply twice, so a crash between
//     copying and confirming costs only the repeat.
//  4. cutover: take every source's fence FOR UPDATE (writes in flight finish,
//     new ones wait: the freeze), read the slots to the end, move the fences to
//     the new epoch, then write the new routing. A failed attempt is retried
//     from its first step; every step is idempotent.
//  5. cleanup: drop the slots, delete the moved rows from their old shards.
//
// Shards holds a pool per shard the new routing names (old shards first, by
// index); Names the shards' database names (the slots are named after them).
type Online struct {
	Catalog *pgxpool.Pool
	Shards  []*pgxpool.Pool
	Names   []string
	Batch   int           // rows a backfill batch copies, changes a catch-up round reads (default 1000)
	Pause   time.Duration // sleep between batches (tests and the demo slow the move down with it)
	// StepTimeout bounds each cutover attempt (default 5 s): a stalled server
	// ends the attempt, which releases the fences, and the next one starts.
	StepTimeout time.Duration
	// Resumes bounds how often Run picks the resharding up again after a
	// broken connection (default 10).
	Resumes int
	// Progress, if set, hears every step as it ends.
	Progress func(Event)
}

// Event is one step of a resharding, for progress output.
type Event struct {
	Phase string // backfill | unconfirmed | catchup | fenced | drained | retry | cutover | cleanup | resume | done
	Shard int    // the source shard, or -1
	N     int64  // rows copied, ids applied, rows deleted in this step
	Took  time.Duration
	Err   error // retry: why the cutover attempt failed; resume: why Run picks up again
}

// Report is what a resharding did.
type Report struct {
	Copied   int64         // rows the backfill copied
	Applied  int64         // ids the catch-up (and the cutover's drain) copied again
	Deleted  int64         // moved rows deleted from their old shards
	Freeze   time.Duration // from the first fence taken to the routing written, retries included
	Attempts int           // cutover attempts
	Resumes  int           // times Run picked up again after a broken connection
	Epoch    int64         // the routing epoch after the cutover
}

type state struct {
	from, to Spec
	epoch    int64
	phase    string
	cursors  []int64
	copied   int64
	applied  int64
}

// Begin records a resharding to spec unless one is recorded already (which
// must be the same: Run then resumes it). It creates the new shards' tables.
func (o *Online) Begin(ctx context.Context, to Spec) error {
	r, err := ReadRouting(ctx, o.Catalog)
	if err != nil {
		return err
	}
	toR, err := to.Router()
	if err != nil {
		return err
	}
	if toR.Shards() > len(o.Shards) || len(o.Names) != len(o.Shards) {
		return fmt.Errorf("reshard: %s needs %d shards; have %d pools and %d names", toR, toR.Shards(), len(o.Shards), len(o.Names))
	}
	st, found, err := o.load(ctx)
	if found && st.phase == "done" {
		if _, err := o.Catalog.Exec(ctx, `DELETE FROM reshard WHERE id = 1 AND phase = 'done'`); err != nil {
			return err
		}
		found = false
	}
	switch {
	case err != nil:
		return err
	case found && st.to.String() != to.String():
		return fmt.Errorf("reshard: a resharding to %s is recorded (phase %s); finish it (Run) or Abort it first", st.to, st.phase)
	case found:
		return nil
	case r.Spec.String() == to.String():
		return fmt.Errorf("reshard: the routing is %s already", to)
	}
	for i := r.Router.Shards(); i < toR.Shards(); i++ {
		if err := InitShard(ctx, o.Shards[i], r.Epoch+1); err != nil {
			return fmt.Errorf("reshard: new shard %d: %w", i, err)
		}
	}
	cursors := make([]int64, r.Router.Shards())
	for i := range cursors {
		cursors[i] = -1 << 63
	}
	_, err = o.Catalog.Exec(ctx, `INSERT INTO reshard (id, from_spec, to_spec, epoch, phase, cursors) VALUES (1, $1, $2, $3, 'start', $4)`,
		r.Spec.String(), to.String(), r.Epoch+1, cursors)
	return err
}

func (o *Online) load(ctx context.Context) (state, bool, error) {
	var st state
	var from, to string
	err := o.Catalog.QueryRow(ctx, `SELECT from_spec, to_spec, epoch, phase, cursors, copied, applied FROM reshard WHERE id = 1`).
		Scan(&from, &to, &st.epoch, &st.phase, &st.cursors, &st.copied, &st.applied)
	if errors.Is(err, pgx.ErrNoRows) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, fmt.Errorf("reshard: read state: %w", err)
	}
	if st.from, err = ParseSpec(from); err != nil {
		return state{}, false, err
	}
	if st.to, err = ParseSpec(to); err != nil {
		return state{}, false, err
	}
	return st, true, nil
}

func (o *Online) setPhase(ctx context.Context, phase string) error {
	if _, err := o.Catalog.Exec(ctx, `UPDATE reshard SET phase = $1 WHERE id = 1`, phase); err != nil {
		return fmt.Errorf("reshard: record phase %s: %w", phase, err)
	}
	return nil
}

func (o *Online) slot(s int) string { return "part04_reshard_" + o.Names[s] }

func (o *Online) batch() int { return cmpOr(o.Batch, 1000) }

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (o *Online) progress(e Event) {
	if o.Progress != nil {
		o.Progress(e)
	}
}

func (o *Online) pause(ctx context.Context) error {
	if o.Pause <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.Pause):
		return nil
	}
}

// Run carries the recorded resharding (Begin) through to the end, from
// whatever phase a previous Run reached. A step that fails on a broken
// connection or an unreachable server (PostgreSQL restarted or failed over:
// the pools' idle connections are dead, and pgxpool pings only those idle for
// over a second) drops every pool's connections and resumes from the
// catalog's state, up to Resumes times, waiting a little longer each time:
// every step is idempotent, so a step repeated after a crash that may have
// run it is safe. A replication slot another session still holds (SQLSTATE
// 55006: a killed resharder's backend, until PostgreSQL notices its
// connection ended) resumes the same way, within the same budget, and so does
// the catalog's resharder lock (ErrResharderRunning): one Run at a time moves
// the rows, a second waits for it or gives up when the budget is spent.
func (o *Online) Run(ctx context.Context) (Report, error) {
	var total Report
	wait := 100 * time.Millisecond
	for resumes := 0; ; resumes++ {
		rep, err := o.run(ctx)
		total.Attempts += rep.Attempts
		total.Deleted += rep.Deleted
		total.Freeze += rep.Freeze
		total.Copied, total.Applied, total.Epoch = rep.Copied, rep.Applied, rep.Epoch
		total.Resumes = resumes
		if err == nil || ctx.Err() != nil || !resumable(err) || resumes >= cmpOr(o.Resumes, 10) {
			return total, err
		}
		if !slotBusy(err) && !errors.Is(err, ErrResharderRunning) {
			o.Catalog.Reset()
			for _, p := range o.Shards {
				p.Reset()
			}
		}
		o.progress(Event{Phase: "resume", Shard: -1, Err: err})
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// resumable reports whether err says the server went away (a broken
// connection, or none to be had while it comes back), or that a slot or the
// resharder's lock is still held by another session, not that a step failed.
func resumable(err error) bool {
	return pgretry.BrokenConn(err) || pgshard.IsConnectError(err) || slotBusy(err) || errors.Is(err, ErrResharderRunning)
}

// ErrResharderRunning is Run's error when another session holds the
// catalog's resharder lock: two resharders at once confirm each other's slot
// changes and recopy rows out of order, and acknowledged writes are lost.
var ErrResharderRunning = errors.New("reshard: another resharder is running on this catalog")

// lockKey is the catalog's session advisory lock a Run holds.
const lockKey = 0x7265_7368 // "resh"

// lock takes the catalog's resharder lock on a connection of its own, held
// until unlock is called; if the connection breaks, the server ends the
// session and the lock with it. A killed resharder's lock goes the same way,
// as soon as PostgreSQL notices its connection ended.
func (o *Online) lock(ctx context.Context) (unlock func(), err error) {
	conn, err := o.Catalog.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("reshard: take the resharder lock: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(lockKey)).Scan(&got); err != nil {
		conn.Release()
		return nil, fmt.Errorf("reshard: take the resharder lock: %w", err)
	}
	if !got {
		var pid int64
		_ = conn.QueryRow(ctx, `SELECT coalesce(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = 0 AND objid = $1 AND objsubid = 1`, int64(lockKey)).Scan(&pid)
		conn.Release()
		return nil, fmt.Errorf("%w (its session: PID %d)", ErrResharderRunning, pid)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, int64(lockKey)); err != nil {
			_ = conn.Conn().Close(uctx) // the session ends, and its lock
		}
		conn.Release()
	}, nil
}

// slotBusy reports whether err is PostgreSQL's "replication slot ... is active
// for PID n" (SQLSTATE 55006, object_in_use): another session holds the slot.
// After a resharder is killed, its backend holds the slot until PostgreSQL
// notices the connection ended, so the next Run can meet it for a moment.
func slotBusy(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55006" && strings.Contains(pgErr.Message, "replication slot")
}

func (o *Online) run(ctx context.Context) (Report, error) {
	unlock, err := o.lock(ctx)
	if err != nil {
		return Report{}, err
	}
	defer unlock()
	st, found, err := o.load(ctx)
	if err != nil {
		return Report{}, err
	}
	if !found {
		return Report{}, errors.New("reshard: no resharding recorded: call Begin first")
	}
	from, _ := st.from.Router()
	to, _ := st.to.Router()
	rep := Report{Epoch: st.epoch}
	sources := from.Shards()
	if st.phase == "start" {
		for s := range sources {
			// A crash between creating the slots and leaving "start" leaves
			// slots behind: drop and create again, nothing was copied yet.
			if _, err := o.Shards[s].Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, o.slot(s)); err != nil {
				return rep, fmt.Errorf("reshard: shard %d: drop old slot: %w", s, err)
			}
			if _, err := o.Shards[s].Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, o.slot(s)); err != nil {
				return rep, fmt.Errorf("reshard: shard %d: create slot %s: %w", s, o.slot(s), err)
			}
		}
		if err := o.setPhase(ctx, "backfill"); err != nil {
			return rep, err
		}
		st.phase = "backfill"
	}
	if st.phase == "backfill" {
		for s := range sources {
			if err := o.backfill(ctx, s, to, st.cursors[s]); err != nil {
				return rep, err
			}
		}
		if err := o.setPhase(ctx, "catchup"); err != nil {
			return rep, err
		}
		st.phase = "catchup"
	}
	if st.phase == "catchup" {
		for round := 0; round < 100; round++ {
			var n int64
			for s := range sources {
				t0 := time.Now()
				k, err := o.drain(ctx, s, to, 1)
				if err != nil {
					return rep, err
				}
				n += k
				o.progress(Event{Phase: "catchup", Shard: s, N: k, Took: time.Since(t0)})
			}
			if n < int64(o.batch())/10 {
				break // the lag is small: the freeze will be short
			}
			if err := o.pause(ctx); err != nil {
				return rep, err
			}
		}
		if err := o.setPhase(ctx, "cutover"); err != nil {
			return rep, err
		}
		st.phase = "cutover"
	}
	if st.phase == "cutover" {
		t0 := time.Now()
		for {
			rep.Attempts++
			err := o.cutover(ctx, sources, to, st)
			if err == nil {
				break
			}
			if ctx.Err() != nil || rep.Attempts >= 20 {
				return rep, fmt.Errorf("reshard: cutover attempt %d: %w", rep.Attempts, err)
			}
			o.progress(Event{Phase: "retry", Shard: -1, Took: time.Since(t0), Err: err})
			select {
			case <-ctx.Done():
				return rep, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		rep.Freeze = time.Since(t0)
		o.progress(Event{Phase: "cutover", Shard: -1, Took: rep.Freeze})
		if err := o.setPhase(ctx, "cleanup"); err != nil {
			return rep, err
		}
		st.phase = "cleanup"
	}
	if st.phase == "cleanup" {
		for s := range sources {
			if _, err := o.Shards[s].Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, o.slot(s)); err != nil {
				return rep, fmt.Errorf("reshard: shard %d: drop slot: %w", s, err)
			}
			n, err := o.deleteMoved(ctx, s, to)
			rep.Deleted += n
			if err != nil {
				return rep, err
			}
		}
		if err := o.setPhase(ctx, "done"); err != nil {
			return rep, err
		}
	}
	if err := o.Catalog.QueryRow(ctx, `SELECT copied, applied FROM reshard WHERE id = 1`).Scan(&rep.Copied, &rep.Applied); err != nil {
		return rep, fmt.Errorf("reshard: read the counts: %w", err)
	}
	o.progress(Event{Phase: "done", Shard: -1})
	return rep, nil
}

// backfill copies source s's rows that to puts elsewhere, after cursor.
func (o *Online) backfill(ctx context.Context, s int, to shard.Router, cursor int64) error {
	// The backfill copies the rows up to the highest id there is now: the
	// slot was created before, so every later insert is in its changes and
	// the catch-up copies it. Without the bound a writer inserting new ids
	// faster than batch rows a pause kept it chasing them for ever (a quiet
	// machine: 5,400 batches in 2 minutes, never done).
	var hi int64
	if err := o.Shards[s].QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM users`).Scan(&hi); err != nil {
		return fmt.Errorf("reshard: backfill shard %d: %w", s, err)
	}
	for {
		t0 := time.Now()
		rows, err := o.Shards[s].Query(ctx, `SELECT id, name, score FROM users WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3`, cursor, hi, o.batch())
		if err != nil {
			return fmt.Errorf("reshard: backfill shard %d: %w", s, err)
		}
		users, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shard.User])
		if err != nil {
			return fmt.Errorf("reshard: backfill shard %d: %w", s, err)
		}
		if len(users) == 0 {
			return nil
		}
		per := make(map[int][]shard.User)
		for _, u := range users {
			t, err := to.Route(ctx, u.ID)
			if err != nil {
				return err
			}
			if t != s {
				per[t] = append(per[t], u)
			}
		}
		var n int64
		for t, us := range per {
			if err := upsert(ctx, o.Shards[t], us); err != nil {
				return fmt.Errorf("reshard: backfill %d rows into shard %d: %w", len(us), t, err)
			}
			n += int64(len(us))
		}
		cursor = users[len(users)-1].ID
		if _, err := o.Catalog.Exec(ctx, `UPDATE reshard SET cursors[$1] = $2, copied = copied + $3 WHERE id = 1`, s+1, cursor, n); err != nil {
			return fmt.Errorf("reshard: record backfill cursor of shard %d: %w", s, err)
		}
		o.progress(Event{Phase: "backfill", Shard: s, N: n, Took: time.Since(t0)})
		if err := o.pause(ctx); err != nil {
			return err
		}
	}
}

// drain reads source s's slot for up to rounds batches (0: until it is
// empty), copies every changed id that to puts elsewhere, and confirms the
// slot past what it applied. It returns the ids it copied.
func (o *Online) drain(ctx context.Context, s int, to shard.Router, rounds int) (int64, error) {
	var total int64
	for r := 0; rounds == 0 || r < rounds; r++ {
		rows, err := o.Shards[s].Query(ctx, `SELECT lsn::text, data FROM pg_logical_slot_peek_changes($1, NULL, $2,
			'include-xids', '0', 'skip-empty-xacts', '1')`, o.slot(s), o.batch())
		if err != nil {
			return total, fmt.Errorf("reshard: shard %d: read slot %s: %w", s, o.slot(s), err)
		}
		var lsn, data, upto string
		ids := map[int64]bool{}
		_, err = pgx.ForEachRow(rows, []any{&lsn, &data}, func() error {
			c, err := parseChange(data)
			switch {
			case errors.Is(err, errNotAChange):
				if data == "COMMIT" || len(data) > 6 && data[:7] == "COMMIT " {
					upto = lsn // a whole transaction read: the slot may pass it
				}
				return nil
			case err != nil:
				return err
			case c.table != "public.users":
				return nil
			case c.op == "TRUNCATE":
				return fmt.Errorf("reshard: shard %d: users was truncated during the move; Abort and start again", s)
			}
			for _, id := range c.ids {
				ids[id] = true
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("reshard: shard %d: decode slot %s: %w", s, o.slot(s), err)
		}
		if upto == "" {
			return total, nil
		}
		n, err := o.recopy(ctx, s, to, ids)
		if err != nil {
			return total, err
		}
		total += n
		o.progress(Event{Phase: "unconfirmed", Shard: s, N: n}) // copied, the slot not yet past it
		if _, err := o.Shards[s].Exec(ctx, `SELECT pg_replication_slot_advance($1, $2::pg_lsn)`, o.slot(s), upto); err != nil {
			return total, fmt.Errorf("reshard: shard %d: confirm slot %s to %s: %w", s, o.slot(s), upto, err)
		}
		if _, err := o.Catalog.Exec(ctx, `UPDATE reshard SET applied = applied + $1 WHERE id = 1`, n); err != nil {
			return total, fmt.Errorf("reshard: record catch-up of shard %d: %w", s, err)
		}
	}
	return total, nil
}

// recopy makes each id's row on its new shard what it is on source s now:
// the row, or no row.
func (o *Online) recopy(ctx context.Context, s int, to shard.Router, ids map[int64]bool) (int64, error) {
	per := map[int][]int64{}
	for id := range ids {
		t, err := to.Route(ctx, id)
		if err != nil {
			return 0, err
		}
		if t != s {
			per[t] = append(per[t], id)
		}
	}
	var n int64
	for t, want := range per {
		rows, err := o.Shards[s].Query(ctx, `SELECT id, name, score FROM users WHERE id = ANY($1)`, want)
		if err != nil {
			return n, fmt.Errorf("reshard: shard %d: read changed rows: %w", s, err)
		}
		users, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shard.User])
		if err != nil {
			return n, fmt.Errorf("reshard: shard %d: read changed rows: %w", s, err)
		}
		present := map[int64]bool{}
		for _, u := range users {
			present[u.ID] = true
		}
		var gone []int64
		for _, id := range want {
			if !present[id] {
				gone = append(gone, id)
			}
		}
		if err := upsert(ctx, o.Shards[t], users); err != nil {
			return n, fmt.Errorf("reshard: copy %d changed rows into shard %d: %w", len(users), t, err)
		}
		if len(gone) > 0 {
			if _, err := o.Shards[t].Exec(ctx, `DELETE FROM users WHERE id = ANY($1)`, gone); err != nil {
				return n, fmt.Errorf("reshard: delete %d rows from shard %d: %w", len(gone), t, err)
			}
		}
		n += int64(len(want))
	}
	return n, nil
}

// cutover is one attempt at the freeze, bounded by StepTimeout.
func (o *Online) cutover(ctx context.Context, sources int, to shard.Router, st state) error {
	ctx, cancel := context.WithTimeout(ctx, cmpOr(o.StepTimeout, 5*time.Second))
	defer cancel()
	r, err := ReadRouting(ctx, o.Catalog)
	if err != nil {
		return err
	}
	if r.Epoch >= st.epoch {
		return nil // a previous attempt wrote the routing: nothing left to do
	}
	// Freeze: each source's fence FOR UPDATE, through an UPDATE to the new
	// epoch, not yet committed. It waits for every write that read the fence
	// FOR SHARE, and holds back the rest.
	txs := make([]pgx.Tx, 0, sources)
	defer func() {
		// After a commit a no-op; on a stalled server bounded, so the attempt
		// ends (pgx closes the connection, the server rolls back).
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, tx := range txs {
			_ = tx.Rollback(rctx)
		}
	}()
	for s := range sources {
		tx, err := o.Shards[s].Begin(ctx)
		if err != nil {
			return fmt.Errorf("shard %d: begin: %w", s, err)
		}
		txs = append(txs, tx)
		if _, err := tx.Exec(ctx, `UPDATE fence SET epoch = $1 WHERE id = 1`, st.epoch); err != nil {
			return fmt.Errorf("shard %d: fence: %w", s, err)
		}
		o.progress(Event{Phase: "fenced", Shard: s})
	}
	// Every write routed by the old table has committed or aborted: read the
	// slots to their end.
	for s := range sources {
		n, err := o.drain(ctx, s, to, 0)
		if err != nil {
			return err
		}
		o.progress(Event{Phase: "drained", Shard: s, N: n})
	}
	for s, tx := range txs {
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("shard %d: commit fence: %w", s, err)
		}
	}
	// From here a write routed by the old table is refused on every source;
	// writers wait for the new routing.
	if _, err := o.Catalog.Exec(ctx, `UPDATE routing SET epoch = $1, spec = $2 WHERE id = 1`, st.epoch, st.to.String()); err != nil {
		return fmt.Errorf("write routing: %w", err)
	}
	return nil
}

// deleteMoved deletes from source s the rows to puts elsewhere.
func (o *Online) deleteMoved(ctx context.Context, s int, to shard.Router) (int64, error) {
	var cursor int64 = -1 << 63
	var total int64
	for {
		t0 := time.Now()
		var ids []int64
		rows, err := o.Shards[s].Query(ctx, `SELECT id FROM users WHERE id > $1 ORDER BY id LIMIT $2`, cursor, o.batch())
		if err != nil {
			return total, fmt.Errorf("reshard: shard %d: read moved rows: %w", s, err)
		}
		all, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return total, fmt.Errorf("reshard: shard %d: read moved rows: %w", s, err)
		}
		if len(all) == 0 {
			return total, nil
		}
		cursor = all[len(all)-1]
		for _, id := range all {
			if t, err := to.Route(ctx, id); err != nil {
				return total, err
			} else if t != s {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			tag, err := o.Shards[s].Exec(ctx, `DELETE FROM users WHERE id = ANY($1)`, ids)
			if err != nil {
				return total, fmt.Errorf("reshard: shard %d: delete moved rows: %w", s, err)
			}
			total += tag.RowsAffected()
			o.progress(Event{Phase: "cleanup", Shard: s, N: tag.RowsAffected(), Took: time.Since(t0)})
		}
	}
}

// Abort drops the slots of a recorded resharding and forgets it. Rows copied
// to new shards stay there (they are not routed to until a cutover).
func (o *Online) Abort(ctx context.Context) error {
	var errs []error
	for s := range o.Shards {
		if _, err := o.Shards[s].Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, o.slot(s)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := o.Catalog.Exec(ctx, `DELETE FROM reshard WHERE id = 1 AND phase <> 'cleanup'`); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func upsert(ctx context.Context, pool *pgxpool.Pool, us []shard.User) error {
	if len(us) == 0 {
		return nil
	}
	ids, names, scores := make([]int64, len(us)), make([]string, len(us)), make([]int64, len(us))
	for i, u := range us {
		ids[i], names[i], scores[i] = u.ID, u.Name, u.Score
	}
	_, err := pool.Exec(ctx, `INSERT INTO users (id, name, score)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, score = excluded.score`, ids, names, scores)
	return err
}

// Layout is what Check found on the shards.
type Layout struct {
	Rows       int64                // rows on all shards
	Duplicated int64                // ids on more than one shard
	Misplaced  int64                // rows on another shard than the routing names
	Users      map[int64]shard.User // every row, by id
}

// Check reads every shard whole and compares it with router.
func Check(ctx context.Context, shards []*pgxpool.Pool, router shard.Router) (Layout, error) {
	l := Layout{Users: map[int64]shard.User{}}
	for s, p := range shards {
		rows, err := p.Query(ctx, `SELECT id, name, score FROM users ORDER BY id`)
		if err != nil {
			return l, fmt.Errorf("reshard: check shard %d: %w", s, err)
		}
		users, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shard.User])
		if err != nil {
			return l, fmt.Errorf("reshard: check shard %d: %w", s, err)
		}
		for _, u := range users {
			l.Rows++
			if _, dup := l.Users[u.ID]; dup {
				l.Duplicated++
			}
			l.Users[u.ID] = u
			if t, err := router.Route(ctx, u.ID); err != nil || t != s {
				l.Misplaced++
			}
		}
	}
	return l, nil
}
