package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	// Pace waits this long after each transaction (0: as fast as it goes).
	Pace time.Duration
	// Committed, if set, is called after each commit with the ids it made visible.
	Committed func(ids []string, at time.Time)
}

// Run writes every event; it returns the count written.
func (l Load) Run(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	total := l.Aggregates * l.PerAggregate
	perTx := max(l.PerTx, 1)
	written := 0
	for written < total {
		var ids []string
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			ids = ids[:0]
			for i := written; i < min(written+perTx, total); i++ {
				agg, n := i%l.Aggregates, i/l.Aggregates
				payload, _ := json.Marshal(map[string]int{"n": n})
				id, err := Insert(ctx, tx, l.Table, Event{AggregateType: l.AggregateType, AggregateID: fmt.Sprintf("agg-%03d", agg),
					EventType: "COUNTED", Payload: payload})
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return nil
		})
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
