// Package pgshard puts package shard's stores and directory on PostgreSQL: one
// database per shard on one server (in production, one server per shard; the
// code does not change), created by Provision.
package pgshard

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/pgretry"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// validName keeps database names to what needs no quoting surprises.
var validName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Provision drops and creates each database in names on the server of
// adminURL (a role that may CREATE DATABASE: the stack's masterclass is a
// superuser). Connections to a dropped database are terminated first.
func Provision(ctx context.Context, adminURL string, names ...string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("pgshard: connect %s: %w", Redact(adminURL), err)
	}
	defer conn.Close(context.Background())
	for _, name := range names {
		if !validName.MatchString(name) {
			return fmt.Errorf("pgshard: database name %q: want lower-case letters, digits and _", name)
		}
		if err := dropSlots(ctx, conn, name); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("pgshard: drop database %s: %w", name, err)
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return fmt.Errorf("pgshard: create database %s: %w", name, err)
		}
	}
	return nil
}

// Drop drops the databases (and any replication slot in them).
func Drop(ctx context.Context, adminURL string, names ...string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("pgshard: connect %s: %w", Redact(adminURL), err)
	}
	defer conn.Close(context.Background())
	var errs []error
	for _, name := range names {
		if !validName.MatchString(name) {
			errs = append(errs, fmt.Errorf("pgshard: database name %q", name))
			continue
		}
		if err := dropSlots(ctx, conn, name); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("pgshard: drop database %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// dropSlots drops the replication slots of database name: a slot keeps its
// database from being dropped and the server's WAL from being recycled.
func dropSlots(ctx context.Context, conn *pgx.Conn, name string) error {
	_, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name)
	if err != nil {
		return fmt.Errorf("pgshard: drop replication slots of %s: %w", name, err)
	}
	return nil
}

// URL returns baseURL with its database replaced by name.
func URL(baseURL, name string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("pgshard: %s is not a postgres:// URL", Redact(baseURL))
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Redact hides the password of a connection URL for messages.
func Redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "(unparsable URL)"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Pool opens a pgxpool on database name of baseURL's server; configure, if
// given, edits the parsed config first (tests use it).
func Pool(ctx context.Context, baseURL, name string, maxConns int32, configure ...func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	u, err := URL(baseURL, name)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		return nil, err
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	for _, f := range configure {
		f(cfg)
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgshard: pool on %s: %w", name, err)
	}
	return p, nil
}

// Schema is the users table of every shard. The index serves Top (scanned
// backwards for score DESC, id DESC).
const Schema = `
CREATE TABLE IF NOT EXISTS users (
    id    BIGINT PRIMARY KEY,
    name  TEXT   NOT NULL,
    score BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS users_score_id ON users (score, id);`

// Store is a shard.Store on one PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	name string
}

// NewStore returns the store on pool's database, called name in errors.
// CreateSchema makes its table.
func NewStore(pool *pgxpool.Pool, name string) *Store { return &Store{pool: pool, name: name} }

// CreateSchema creates the users table if it is missing.
func (s *Store) CreateSchema(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("pgshard: schema in %s: %w", s.name, err)
	}
	return nil
}

// Pool returns the store's pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Put implements shard.Store.
func (s *Store) Put(ctx context.Context, us ...shard.User) error {
	if len(us) == 0 {
		return nil
	}
	// One INSERT … ON CONFLICT DO UPDATE may not touch a row twice
	// (SQLSTATE 21000), so an id named twice keeps its last user: what
	// putting them in turn would leave.
	at := make(map[int64]int, len(us))
	ids, names, scores := make([]int64, 0, len(us)), make([]string, 0, len(us)), make([]int64, 0, len(us))
	for _, u := range us {
		if i, ok := at[u.ID]; ok {
			names[i], scores[i] = u.Name, u.Score
			continue
		}
		at[u.ID] = len(ids)
		ids, names, scores = append(ids, u.ID), append(names, u.Name), append(scores, u.Score)
	}
	return pgretry.Write(ctx, s.pool, func() error {
		_, err := s.pool.Exec(ctx, `INSERT INTO users (id, name, score)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, score = excluded.score`, ids, names, scores)
		return err
	})
}

// Get implements shard.Store.
func (s *Store) Get(ctx context.Context, id int64) (shard.User, error) {
	var u shard.User
	err := pgretry.Read(ctx, s.pool, func() error {
		return s.pool.QueryRow(ctx, `SELECT id, name, score FROM users WHERE id = $1`, id).Scan(&u.ID, &u.Name, &u.Score)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return shard.User{}, shard.ErrNotFound
	}
	return u, err
}

// Delete implements shard.Store.
func (s *Store) Delete(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	return pgretry.Write(ctx, s.pool, func() error {
		_, err := s.pool.Exec(ctx, `DELETE FROM users WHERE id = ANY($1)`, ids)
		return err
	})
}

// Top implements shard.Store: the row comparison (score, id) < (a, b) is the
// keyset that the index scan starts from.
func (s *Store) Top(ctx context.Context, after *shard.Cursor, limit int) ([]shard.User, error) {
	if after == nil {
		return s.query(ctx, `SELECT id, name, score FROM users ORDER BY score DESC, id DESC LIMIT $1`, limit)
	}
	return s.query(ctx, `SELECT id, name, score FROM users WHERE (score, id) < ($2, $3)
		ORDER BY score DESC, id DESC LIMIT $1`, limit, after.Score, after.ID)
}

// Scan implements shard.Store.
func (s *Store) Scan(ctx context.Context, afterID int64, limit int) ([]shard.User, error) {
	return s.query(ctx, `SELECT id, name, score FROM users WHERE id > $2 ORDER BY id LIMIT $1`, limit, afterID)
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]shard.User, error) {
	var out []shard.User
	err := pgretry.Read(ctx, s.pool, func() error {
		rows, _ := s.pool.Query(ctx, sql, args...) // CollectRows returns Query's error
		var err error
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[shard.User])
		return err
	})
	return out, err
}

// Count implements shard.Store.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	err := pgretry.Read(ctx, s.pool, func() error {
		return s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	})
	return n, err
}

// Truncate empties the users table.
func (s *Store) Truncate(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `TRUNCATE users`)
	return err
}

// Name implements shard.Store.
func (s *Store) Name() string { return s.name }

// Table is a shard.Table in PostgreSQL: directory(key, shard).
type Table struct{ pool *pgxpool.Pool }

// NewTable creates the directory table in pool's database if it is missing.
func NewTable(ctx context.Context, pool *pgxpool.Pool) (*Table, error) {
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS directory (
		key   BIGINT  PRIMARY KEY,
		shard INTEGER NOT NULL CHECK (shard >= 0))`); err != nil {
		return nil, fmt.Errorf("pgshard: directory table: %w", err)
	}
	return &Table{pool: pool}, nil
}

// Lookup implements shard.Table.
func (t *Table) Lookup(ctx context.Context, key int64) (int, bool, error) {
	var s int
	err := pgretry.Read(ctx, t.pool, func() error {
		return t.pool.QueryRow(ctx, `SELECT shard FROM directory WHERE key = $1`, key).Scan(&s)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return s, err == nil, err
}

// Assign implements shard.Table: insert if absent, else read the entry that
// won. The read is a second statement: one that loses the insert to a
// concurrent transaction waits for it to commit, but its own snapshot, taken
// before, does not show the winner's row.
func (t *Table) Assign(ctx context.Context, key int64, s int) (int, error) {
	var tag pgconn.CommandTag
	// Insert-if-absent is safe to repeat on a new connection after a broken
	// one, even if the first run committed: the repeat inserts nothing and the
	// read below returns the entry, this call's or a concurrent one's.
	err := pgretry.Idempotent(ctx, t.pool, func() (err error) {
		tag, err = t.pool.Exec(ctx, `INSERT INTO directory (key, shard) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, s)
		return err
	})
	if err != nil || tag.RowsAffected() == 1 {
		return s, err
	}
	got, ok, err := t.Lookup(ctx, key)
	if err == nil && !ok {
		err = fmt.Errorf("pgshard: directory entry for key %d vanished after a conflicting insert", key)
	}
	return got, err
}

// Reassign implements shard.Table.
func (t *Table) Reassign(ctx context.Context, from, to, n int) (int, error) {
	var tag pgconn.CommandTag
	err := pgretry.Write(ctx, t.pool, func() (err error) {
		tag, err = t.pool.Exec(ctx, `UPDATE directory SET shard = $2 WHERE key IN (
		SELECT key FROM directory WHERE shard = $1 ORDER BY key DESC LIMIT $3)`, from, to, n)
		return err
	})
	return int(tag.RowsAffected()), err
}

// LookupAll implements shard.Table.
func (t *Table) LookupAll(ctx context.Context, keys []int64) (map[int64]int, error) {
	var out map[int64]int
	err := pgretry.Read(ctx, t.pool, func() error {
		out = make(map[int64]int, len(keys))
		rows, _ := t.pool.Query(ctx, `SELECT key, shard FROM directory WHERE key = ANY($1)`, keys) // ForEachRow returns Query's error
		var k int64
		var s int
		_, err := pgx.ForEachRow(rows, []any{&k, &s}, func() error { out[k] = s; return nil })
		return err
	})
	return out, err
}

// AssignAll implements shard.Table.
func (t *Table) AssignAll(ctx context.Context, keys []int64, shards []int) error {
	if len(keys) != len(shards) {
		return fmt.Errorf("pgshard: %d keys but %d shards", len(keys), len(shards))
	}
	return pgretry.Idempotent(ctx, t.pool, func() error { // insert-if-absent: see Assign
		_, err := t.pool.Exec(ctx, `INSERT INTO directory (key, shard) SELECT * FROM unnest($1::bigint[], $2::int[])
		ON CONFLICT (key) DO NOTHING`, keys, shards)
		return err
	})
}

// Counts implements shard.Table.
func (t *Table) Counts(ctx context.Context) (map[int]int64, error) {
	var out map[int]int64
	err := pgretry.Read(ctx, t.pool, func() error {
		out = map[int]int64{}
		rows, _ := t.pool.Query(ctx, `SELECT shard, count(*) FROM directory GROUP BY shard`) // ForEachRow returns Query's error
		var s int
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&s, &n}, func() error { out[s] = n; return nil })
		return err
	})
	return out, err
}

// Truncate empties the directory.
func (t *Table) Truncate(ctx context.Context) error {
	_, err := t.pool.Exec(ctx, `TRUNCATE directory`)
	return err
}

// IsConnectError reports whether err means the server could not be reached.
func IsConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}
