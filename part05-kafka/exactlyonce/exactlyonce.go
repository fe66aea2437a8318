// Package exactlyonce applies Kafka messages to PostgreSQL exactly once: the
// business write and the consumed offset commit in one transaction, and a
// consumer that starts (or gets a partition after a rebalance) resumes from
// the offset stored there, not from the consumer group's.
//
// It fixes the article's ProcessOrderEvent:
//
//   - The offset column is "offset" quoted nowhere in the article; OFFSET is a
//     reserved word in PostgreSQL, so its CREATE TABLE and every query fail
//     with a syntax error. Here the column is next_offset.
//   - The duplicate check compares the message's offset with the stored one
//     for equality, but the table keeps one row per partition, the latest
//     offset: after a crash the consumer re-reads every message since the
//     group's last commit, and all but the last pass the check and are
//     applied again. Here a message is skipped when its offset is below the
//     stored next offset (offset >= the article's stored offset).
//   - The check and the write race with a second consumer of the partition
//     (a zombie after a rebalance): the offset row is read FOR UPDATE, so the
//     second transaction waits for the first and then skips what it applied.
//     On a partition's first batch there is no row yet to lock; Apply
//     inserts it first, so the second transaction waits on its key.
//
// Kafka's offsets only cover consumer replays. A producer that retried a send
// whose acknowledgement it lost (kafka-go has no idempotent producer) writes
// the message twice at two offsets; a handler that must not apply it twice
// keys its write by an ID carried in the message (the orders handler does).
package exactlyonce

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
)

// Schema holds the chapter's tables.
const Schema = "part05"

// migrateLock is the advisory lock key: "part05" + 1.
const migrateLock = 0x7061727430350001

// Handler queues the statements of m's business write on b, or returns an
// error for a message it cannot apply (wrap it with Permanent when retrying
// cannot help: a malformed message).
type Handler func(b *pgx.Batch, m kafka.Message) error

// Store keeps one consumer group's offsets next to its business data.
type Store struct {
	db    *pgxpool.Pool
	group string
}

// New returns the store of consumer group group on db; call Migrate once.
func New(db *pgxpool.Pool, group string) *Store { return &Store{db: db, group: group} }

// Migrate creates the offsets and dead-letter tables (idempotent; safe to
// run from several processes at once).
func Migrate(ctx context.Context, db *pgxpool.Pool, extra ...string) error {
	stmts := append([]string{
		`CREATE SCHEMA IF NOT EXISTS ` + Schema,
		`CREATE TABLE IF NOT EXISTS ` + Schema + `.kafka_offsets (
			group_id    text   NOT NULL,
			topic       text   NOT NULL,
			partition   int    NOT NULL,
			next_offset bigint NOT NULL, -- the next offset to read, as Kafka commits it
			PRIMARY KEY (group_id, topic, partition))`,
		`CREATE TABLE IF NOT EXISTS ` + Schema + `.dead_letters (
			group_id   text   NOT NULL,
			topic      text   NOT NULL,
			partition  int    NOT NULL,
			"offset"   bigint NOT NULL,
			reason     text   NOT NULL,
			at         timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (group_id, topic, partition, "offset"))`,
	}, extra...)
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
		}
		return nil
	})
}

// Offsets returns the next offset to read for every partition of topic the
// group has applied messages from.
func (s *Store) Offsets(ctx context.Context, topic string) (map[int]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT partition, next_offset FROM `+Schema+`.kafka_offsets
		WHERE group_id = $1 AND topic = $2`, s.group, topic)
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	var p int
	var off int64
	_, err = pgx.ForEachRow(rows, []any{&p, &off}, func() error { out[p] = off; return nil })
	return out, err
}

// Result says what one Apply did.
type Result struct {
	Applied int   // messages whose business write committed
	Dead    int   // messages recorded as dead letters
	Skipped int   // messages below the stored offset: applied by an earlier transaction
	Next    int64 // the stored next offset after the transaction
}

// MessageError is the message an Apply failed on: its handler refused it, or
// PostgreSQL answered one of its statements with a data error or an
// integrity violation (SQLSTATE classes 22, 23). The transaction
// was rolled back: nothing of the batch was applied. Errors that are not the
// message's (a connection lost mid-batch, the database down) come back
// unwrapped, to be retried.
type MessageError struct {
	Message   kafka.Message
	Err       error
	Permanent bool // retrying cannot help: send it to the dead-letter topic
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("partition %d offset %d: %v", e.Message.Partition, e.Message.Offset, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }

type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent marks err as one that retrying will not fix.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was marked Permanent, or is a PostgreSQL
// data exception or integrity violation (SQLSTATE classes 22 and 23), which
// the same message will hit again.
func IsPermanent(err error) bool {
	var p permanent
	var pg *pgconn.PgError
	return errors.As(err, &p) || errors.As(err, &pg) && (pg.Code[:2] == "22" || pg.Code[:2] == "23")
}

// lockOffset reads the partition's stored next offset and holds its row
// until the transaction ends, so a second consumer of the partition (a
// zombie after a rebalance) waits and then sees what this one applied. A
// partition's first batch finds no row to lock: it inserts one first (the
// insert of a second transaction waits for this one's, on the primary key),
// with next offset -1, which only a transaction that applies something
// commits, overwritten by the batch's.
func (s *Store) lockOffset(ctx context.Context, tx pgx.Tx, topic string, partition int) (int64, error) {
	const lock = `SELECT next_offset FROM ` + Schema + `.kafka_offsets
		WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE`
	var next int64
	err := tx.QueryRow(ctx, lock, s.group, topic, partition).Scan(&next)
	if !errors.Is(err, pgx.ErrNoRows) {
		return next, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+Schema+`.kafka_offsets (group_id, topic, partition, next_offset)
		VALUES ($1, $2, $3, -1) ON CONFLICT DO NOTHING`, s.group, topic, partition); err != nil {
		return 0, err
	}
	err = tx.QueryRow(ctx, lock, s.group, topic, partition).Scan(&next)
	return next, err
}

// CommitWait is how long Apply waits for the answer to its COMMIT, even
// after its context has ended.
const CommitWait = 10 * time.Second

// Apply applies msgs, all from one partition of topic in offset order, in
// one transaction that also stores the next offset. Messages below the
// stored offset are skipped; messages whose offset is in dead are recorded
// in dead_letters with the reason instead of being handled. The business
// writes go to PostgreSQL as one pipelined batch.
//
// ctx ending stops Apply until it sends COMMIT, and not after: PostgreSQL
// finishes a COMMIT it has received whatever the client does, so an answer
// cut off by ctx would leave the caller counting as not applied a batch
// that was. Apply waits for the answer (up to CommitWait), and what it
// returns is what PostgreSQL did; only an error on the COMMIT itself (the
// connection lost, CommitWait passed) leaves it unknown, and the offset
// check makes a retry safe either way.
func (s *Store) Apply(ctx context.Context, topic string, partition int, msgs []kafka.Message,
	h Handler, dead map[int64]string) (Result, error) {
	if len(msgs) == 0 {
		return Result{}, nil
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // does nothing after the commit
	res, err := s.apply(ctx, tx, topic, partition, msgs, h, dead)
	if err != nil {
		return Result{}, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitWait)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		return Result{}, err
	}
	return res, nil
}

// apply runs Apply's statements in tx.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, topic string, partition int, msgs []kafka.Message,
	h Handler, dead map[int64]string) (Result, error) {
	var res Result
	next, err := s.lockOffset(ctx, tx, topic, partition)
	if err != nil {
		return res, err
	}
	b := &pgx.Batch{}
	owner := []int{} // owner[i]: index in msgs of the message that queued statement i
	for i, m := range msgs {
		if m.Offset < next {
			res.Skipped++
			continue
		}
		before := b.Len()
		if reason, ok := dead[m.Offset]; ok {
			b.Queue(`INSERT INTO `+Schema+`.dead_letters (group_id, topic, partition, "offset", reason)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, s.group, topic, partition, m.Offset, reason)
			res.Dead++
		} else {
			if err := h(b, m); err != nil {
				return res, &MessageError{Message: m, Err: err, Permanent: IsPermanent(err)}
			}
			res.Applied++
		}
		for range b.Len() - before {
			owner = append(owner, i)
		}
	}
	if res.Applied+res.Dead == 0 {
		res.Next = next
		return res, nil
	}
	res.Next = msgs[len(msgs)-1].Offset + 1
	b.Queue(`INSERT INTO `+Schema+`.kafka_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
		ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset`,
		s.group, topic, partition, res.Next)
	br := tx.SendBatch(ctx, b)
	for i := range b.Len() {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			// Only a data error or integrity violation is the message's;
			// a lost connection, a deadlock, a server shutting down are
			// the database's, are retried, and must not push healthy
			// messages toward the dead-letter topic.
			if i < len(owner) && IsPermanent(err) {
				return res, &MessageError{Message: msgs[owner[i]], Err: err, Permanent: true}
			}
			return res, err
		}
	}
	return res, br.Close()
}
