package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CDC is the log-based relay: it reads the outbox's inserts from a logical
// replication slot (pgoutput) and publishes them, as Debezium's PostgreSQL
// connector with the outbox EventRouter does. The slot remembers the position
// the relay confirmed, and the relay confirms a transaction's end only after
// Kafka acknowledged all its events: a relay killed at any moment resumes from
// there, re-sending at most what was published and not yet confirmed.
type CDC struct {
	// DSN is a connection string for a role with REPLICATION (or superuser).
	DSN         string
	Slot        string // the replication slot (Setup creates it)
	Publication string // the publication of part08.outbox (Setup creates it)
	Publisher   Publisher
	Router      Router
	Topics      *Topics
	// Batch publishes once this many events wait (100 if 0); Linger publishes
	// what waits once the stream has been quiet this long (2 ms if 0).
	Batch  int
	Linger time.Duration
}

// Setup creates the publication (inserts into part08.<table> only) and the
// slot if they do not exist. Create the slot before the events it must see:
// it streams what commits after its creation.
func Setup(ctx context.Context, pool *pgxpool.Pool, table, slot, publication string) error {
	if _, err := pool.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = %s) THEN
			CREATE PUBLICATION %s FOR TABLE part08.%s WITH (publish = 'insert');
		END IF; END $$`, quoteLiteral(publication), ident(publication), ident(table))); err != nil {
		return fmt.Errorf("publication: %w", err)
	}
	_, err := pool.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')
		WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`, slot)
	if err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	return nil
}

// Teardown drops the slot (first ending the relay's session if one is still
// attached), so PostgreSQL stops keeping WAL for it, and the publication.
func Teardown(ctx context.Context, pool *pgxpool.Pool, slot, publication string) error {
	for range 50 {
		var active bool
		err := pool.QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return err
		}
		if !active {
			if _, err := pool.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot); err != nil {
				return err
			}
			break
		}
		_, _ = pool.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`, slot)
		time.Sleep(100 * time.Millisecond)
	}
	_, err := pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+ident(publication))
	return err
}

// Run streams until ctx ends.
func (c *CDC) Run(ctx context.Context) error {
	conn, err := pgconn.Connect(ctx, withReplication(c.DSN))
	if err != nil {
		return fmt.Errorf("replication connection: %w", err)
	}
	defer conn.Close(context.Background())
	err = pglogrepl.StartReplication(ctx, conn, c.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(c.Publication)},
	})
	if err != nil {
		return fmt.Errorf("start replication on slot %s: %w", c.Slot, err)
	}
	err = c.stream(ctx, conn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (c *CDC) stream(ctx context.Context, conn *pgconn.PgConn) error {
	batch, linger := c.Batch, c.Linger
	if batch == 0 {
		batch = 100
	}
	if linger == 0 {
		linger = 2 * time.Millisecond
	}
	relations := map[uint32]*pglogrepl.RelationMessage{}
	var (
		pending   []Event
		committed pglogrepl.LSN // end of the last transaction whose events are all in pending
		confirmed pglogrepl.LSN // what the slot has been told
		inTx      bool
		firstWait time.Time
		status    = time.Now()
	)
	confirm := func(lsn pglogrepl.LSN) error {
		status = time.Now()
		if lsn > confirmed {
			confirmed = lsn
		}
		return pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: confirmed})
	}
	flush := func() error {
		if len(pending) > 0 {
			if err := publish(ctx, c.Publisher, c.Topics, c.Router, pending); err != nil {
				return err
			}
			pending = pending[:0]
		}
		return confirm(committed) // only now: Kafka has every event up to committed
	}
	for {
		deadline := status.Add(10 * time.Second)
		if len(pending) > 0 && !inTx {
			deadline = firstWait.Add(linger)
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				if err := flush(); err != nil {
					return err
				}
				continue
			}
			return err
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return err
				}
				if len(pending) == 0 && !inTx && ka.ServerWALEnd > committed {
					committed = ka.ServerWALEnd // nothing of ours before it: let the slot move on
				}
				if ka.ReplyRequested {
					if err := flush(); err != nil {
						return err
					}
				}
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return err
				}
				ev, end, err := c.decode(x.WALData, relations, &inTx)
				if err != nil {
					return err
				}
				if ev != nil {
					if len(pending) == 0 {
						firstWait = time.Now()
					}
					pending = append(pending, *ev)
				}
				if end != 0 {
					committed = end
					if len(pending) >= batch {
						if err := flush(); err != nil {
							return err
						}
					} else if len(pending) == 0 && time.Since(status) > time.Second {
						if err := confirm(committed); err != nil {
							return err
						}
					}
				}
			}
		}
	}
}

// decode handles one pgoutput message: a relation is remembered, an insert
// into part08.outbox becomes an Event, a commit returns the transaction's end.
func (c *CDC) decode(wal []byte, relations map[uint32]*pglogrepl.RelationMessage, inTx *bool) (*Event, pglogrepl.LSN, error) {
	if len(wal) == 0 {
		return nil, 0, errors.New("empty pgoutput message")
	}
	msg, err := pglogrepl.Parse(wal)
	if err != nil {
		return nil, 0, fmt.Errorf("pgoutput: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		relations[m.RelationID] = m
	case *pglogrepl.BeginMessage:
		*inTx = true
	case *pglogrepl.CommitMessage:
		*inTx = false
		return nil, m.TransactionEndLSN, nil
	case *pglogrepl.InsertMessage:
		rel, ok := relations[m.RelationID]
		if !ok {
			return nil, 0, fmt.Errorf("insert into unknown relation %d", m.RelationID)
		}
		names := make([]string, len(rel.Columns))
		for i, col := range rel.Columns {
			names[i] = col.Name
		}
		values := make([][]byte, len(m.Tuple.Columns))
		for i, col := range m.Tuple.Columns {
			if col.DataType == pglogrepl.TupleDataTypeText {
				values[i] = col.Data
			}
		}
		ev, err := DecodeRow(names, values)
		if err != nil {
			ev.invalid = err // a row this relay cannot read is dead-lettered, not a stall
		}
		return &ev, 0, nil
	}
	return nil, 0, nil
}

// DecodeRow reads an outbox row from its columns' names and text values (nil
// for NULL), as pgoutput sends them.
func DecodeRow(names []string, values [][]byte) (Event, error) {
	if len(names) != len(values) {
		return Event{}, fmt.Errorf("%d column names for %d values", len(names), len(values))
	}
	var e Event
	var missing []string
	got := map[string]bool{}
	for i, n := range names {
		v := values[i]
		got[n] = v != nil
		switch n {
		case "id":
			e.ID = string(v)
		case "seq":
			if v != nil {
				s, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil {
					return e, fmt.Errorf("seq %q: %w", v, err)
				}
				e.Seq = s
			}
		case "aggregate_type":
			e.AggregateType = string(v)
		case "aggregate_id":
			e.AggregateID = string(v)
		case "event_type":
			e.EventType = string(v)
		case "payload":
			e.Payload = append([]byte(nil), v...)
		case "created_at":
			if v != nil {
				t, err := time.Parse("2006-01-02 15:04:05.999999-07", string(v))
				if err != nil {
					return e, fmt.Errorf("created_at %q: %w", v, err)
				}
				e.CreatedAt = t
			}
		}
	}
	for _, n := range []string{"id", "aggregate_type", "aggregate_id", "event_type", "payload"} {
		if !got[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return e, fmt.Errorf("outbox row without %v", missing)
	}
	return e, nil
}

// withReplication adds replication=database (a logical replication
// connection) to a URL or a key=value connection string.
func withReplication(dsn string) string {
	switch {
	case !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://"):
		return dsn + " replication=database"
	case strings.Contains(dsn, "?"):
		return dsn + "&replication=database"
	}
	return dsn + "?replication=database"
}

// ident quotes an identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := range len(s) {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
