package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/pgretry"
)

// Load writes events to an outbox table for the demo, the tests and the
// benchmarks: Aggregates aggregates of AggregateType, PerAggregate events
// each with payload {"n": k} (k counting up per aggregate), PerTx events per
// transaction taken round-robin across aggregates, so an aggregate's events
// are committed in order.
type Load struct {
	Table         string
	AggregateType string
	Aggregates    int
	PerAggregate  int
	PerTx         int
	// First is the first event's k in every aggregate: a Load with First
	// set to an earlier one's PerAggregate continues it.
	First int
	// Pace waits this long after each transaction (0: as fast as it goes).
	Pace time.Duration
	// Committed, if set, is called after each commit with the ids it made visible.
	Committed func(ids []string, at time.Time)
}

// Run writes every event; it returns the count written. A transaction that
// fails on a broken connection before its COMMIT was sent committed nothing,
// so it runs once more after the pool's connections are dropped: just after
// PostgreSQL restarted, the pool hands out connections that died with the
// server (pgxpool pings only those idle for over a second). A COMMIT that
// fails so is returned: whether it committed is unknown.
func (l Load) Run(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	total := l.Aggregates * l.PerAggregate
	perTx := max(l.PerTx, 1)
	written := 0
	for written < total {
		to := min(written+perTx, total)
		ids, err := l.write(ctx, pool, written, to)
		var ce commitError
		if err != nil && ctx.Err() == nil && !errors.As(err, &ce) && pgretry.BrokenConn(err) {
			pool.Reset()
			ids, err = l.write(ctx, pool, written, to)
		}
		if err != nil {
			return written, err
		}
		if l.Committed != nil {
			l.Committed(ids, time.Now())
		}
		written += len(ids)
		if l.Pace > 0 {
			select {
			case <-ctx.Done():
				return written, ctx.Err()
			case <-time.After(l.Pace):
			}
		}
	}
	return written, nil
}

// write writes events from to to-1 in one transaction.
func (l Load) write(ctx context.Context, pool *pgxpool.Pool, from, to int) ([]string, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit, a no-op
	ids := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		agg, n := i%l.Aggregates, l.First+i/l.Aggregates
		payload, _ := json.Marshal(map[string]int{"n": n})
		id, err := Insert(ctx, tx, l.Table, Event{AggregateType: l.AggregateType, AggregateID: fmt.Sprintf("agg-%03d", agg),
			EventType: "COUNTED", Payload: payload})
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, commitError{err}
	}
	return ids, nil
}

// commitError is a COMMIT that failed: the transaction may have committed.
type commitError struct{ error }

func (e commitError) Unwrap() error { return e.error }

// Tally checks what a consumer received from a Load: duplicates (removed by
// event id) and, per aggregate, that the first delivery of each event came in
// the order written.
type Tally struct {
	seen     Dedup
	next     map[string]int
	Received int // messages, duplicates included
	// Duplicates were delivered again (at least once allows it); OutOfOrder
	// arrived (first time) after a later event of their aggregate.
	Duplicates, OutOfOrder int
}

// Add counts one delivery.
func (t *Tally) Add(d Delivered) error {
	if t.seen == nil {
		t.seen, t.next = Dedup{}, map[string]int{}
	}
	t.Received++
	if t.seen.Seen(d.ID) {
		t.Duplicates++
		return nil
	}
	var p struct{ N *int }
	if err := json.Unmarshal(d.Payload, &p); err != nil || p.N == nil {
		return fmt.Errorf("event %s: payload %s has no n", d.ID, d.Payload)
	}
	if *p.N != t.next[d.AggregateID] {
		t.OutOfOrder++
	}
	t.next[d.AggregateID] = *p.N + 1
	return nil
}

// Distinct is the number of different events received.
func (t *Tally) Distinct() int { return len(t.seen) }
