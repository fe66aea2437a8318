package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
)

// Poller is the polling relay: it moves the outbox's oldest rows to Kafka in
// batches.
type Poller struct {
	Pool      *pgxpool.Pool
	Table     string // part08.<Table>: DefaultTable if empty
	Publisher Publisher
	Router    Router
	Topics    *Topics       // creates each known type's topic on first use; nil: they exist
	Batch     int           // rows per transaction (100 if 0)
	Interval  time.Duration // wait after a poll that found nothing (100 ms if 0)
	// Mark sets published_at instead of deleting the rows (they stay for
	// audit; something else must prune them).
	Mark bool
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	interval := p.Interval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := p.Once(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n > 0 {
			t.Reset(0)
		} else {
			t.Reset(interval)
		}
	}
}

// Once publishes one batch: in one transaction it locks the oldest
// unpublished rows (FOR UPDATE SKIP LOCKED), writes them to Kafka, waits for
// the acknowledgement, and deletes or marks them. A crash before the commit
// leaves the rows for the next poll: some may already be in Kafka, so delivery
// is at least once. A transaction-level advisory lock keeps one poller
// publishing at a time: two pollers would each lock a batch and could publish
// an aggregate's later event before its earlier one. It returns the rows moved.
func (p *Poller) Once(ctx context.Context) (int, error) {
	if err := checkTable(p.table()); err != nil {
		return 0, err
	}
	batch := p.Batch
	if batch == 0 {
		batch = 100
	}
	n := 0
	err := pgx.BeginFunc(ctx, p.Pool, func(tx pgx.Tx) error {
		var leader bool
		// One lock per outbox table: pollers of other tables do not wait on it.
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(8009, hashtext($1))`, p.table()).Scan(&leader); err != nil || !leader {
			return err
		}
		where := ""
		if p.Mark {
			where = "WHERE published_at IS NULL"
		}
		rows, err := tx.Query(ctx, `SELECT seq, id::text, aggregate_type, aggregate_id, event_type, payload::text, created_at
			FROM part08.`+p.table()+` `+where+` ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, batch)
		if err != nil {
			return err
		}
		evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
			var e Event
			var payload string
			err := r.Scan(&e.Seq, &e.ID, &e.AggregateType, &e.AggregateID, &e.EventType, &payload, &e.CreatedAt)
			e.Payload = []byte(payload)
			return e, err
		})
		if err != nil || len(evs) == 0 {
			return err
		}
		if err := publish(ctx, p.Publisher, p.Topics, p.Router, evs); err != nil {
			return err
		}
		seqs := make([]int64, len(evs))
		for i, e := range evs {
			seqs[i] = e.Seq
		}
		q := `DELETE FROM part08.` + p.table() + ` WHERE seq = ANY($1)`
		if p.Mark {
			q = `UPDATE part08.` + p.table() + ` SET published_at = now() WHERE seq = ANY($1)`
		}
		if _, err := tx.Exec(ctx, q, seqs); err != nil {
			return err
		}
		n = len(evs)
		return nil
	})
	return n, err
}

func (p *Poller) table() string {
	if p.Table == "" {
		return DefaultTable
	}
	return p.Table
}

// publish routes evs (dead-lettering what cannot be routed), creates the
// topics they need and writes them, returning once Kafka acknowledged all.
func publish(ctx context.Context, pub Publisher, topics *Topics, r Router, evs []Event) error {
	msgs := make([]kafka.Message, len(evs))
	var names []string
	seen := map[string]bool{}
	for i, e := range evs {
		msgs[i], _ = r.Route(e) // a dead letter is still a message to write
		if !seen[msgs[i].Topic] {
			seen[msgs[i].Topic] = true
			names = append(names, msgs[i].Topic)
		}
	}
	if topics != nil {
		if err := topics.Ensure(ctx, names...); err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
	}
	if err := Write(ctx, pub, msgs...); err != nil {
		return fmt.Errorf("publish %d events: %w", len(msgs), err)
	}
	return nil
}
