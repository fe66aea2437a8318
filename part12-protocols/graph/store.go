package graph

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/pgretry"
)

// Store reads the graph. Every method is one statement on PostgreSQL, so
// counting calls counts queries. The ...By... methods take many parent IDs:
// a DataLoader's batch passes them all, the N+1 resolvers one at a time.
type Store interface {
	Users(ctx context.Context, limit int) ([]*User, error)
	UsersByID(ctx context.Context, ids []int) ([]*User, error)
	PostsByUser(ctx context.Context, userIDs []int, limit int) ([]*Post, error)
	CommentsByPost(ctx context.Context, postIDs []int, limit int) ([]*Comment, error)
}

// Postgres is a Store on the tables Migrate creates in one schema.
type Postgres struct {
	pool   *pgxpool.Pool
	schema string
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// NewPostgres reads schema's tables through pool. schema must be a plain
// lower-case identifier: it is written into the SQL.
func NewPostgres(pool *pgxpool.Pool, schema string) (*Postgres, error) {
	if !identifier.MatchString(schema) {
		return nil, fmt.Errorf("graph: schema %q is not a plain identifier", schema)
	}
	return &Postgres{pool: pool, schema: schema}, nil
}

// Schema is the schema the store reads.
func (p *Postgres) Schema() string { return p.schema }

// Users returns the first limit users by id.
func (p *Postgres) Users(ctx context.Context, limit int) ([]*User, error) {
	return read(ctx, p, func(r pgx.CollectableRow) (*User, error) {
		var u User
		return &u, r.Scan(&u.ID, &u.Name)
	}, `SELECT id, name FROM `+p.schema+`.users ORDER BY id LIMIT $1`, limit)
}

// UsersByID returns the users with these ids, in id order.
func (p *Postgres) UsersByID(ctx context.Context, ids []int) ([]*User, error) {
	return read(ctx, p, func(r pgx.CollectableRow) (*User, error) {
		var u User
		return &u, r.Scan(&u.ID, &u.Name)
	}, `SELECT id, name FROM `+p.schema+`.users WHERE id = ANY($1) ORDER BY id`, ids)
}

// PostsByUser returns up to limit posts of each user, by user then post id:
// the article's `SELECT * FROM posts WHERE user_id IN (...)`, with the IN
// list as one array parameter (one prepared statement for any batch size) and
// the per-user limit applied by a window function.
func (p *Postgres) PostsByUser(ctx context.Context, userIDs []int, limit int) ([]*Post, error) {
	return read(ctx, p, func(r pgx.CollectableRow) (*Post, error) {
		var x Post
		return &x, r.Scan(&x.ID, &x.UserID, &x.Title)
	}, `SELECT id, user_id, title FROM (
		SELECT id, user_id, title, row_number() OVER (PARTITION BY user_id ORDER BY id) AS n
		FROM `+p.schema+`.posts WHERE user_id = ANY($1)) p
		WHERE n <= $2 ORDER BY user_id, id`, userIDs, limit)
}

// CommentsByPost returns up to limit comments of each post.
func (p *Postgres) CommentsByPost(ctx context.Context, postIDs []int, limit int) ([]*Comment, error) {
	return read(ctx, p, func(r pgx.CollectableRow) (*Comment, error) {
		var c Comment
		return &c, r.Scan(&c.ID, &c.PostID, &c.AuthorID, &c.Body)
	}, `SELECT id, post_id, author_id, body FROM (
		SELECT id, post_id, author_id, body, row_number() OVER (PARTITION BY post_id ORDER BY id) AS n
		FROM `+p.schema+`.comments WHERE post_id = ANY($1)) c
		WHERE n <= $2 ORDER BY post_id, id`, postIDs, limit)
}

// read runs a read-only statement and collects its rows with fn. A
// connection broken under it is retried once, after the pool has dropped
// every connection it held: they all reached the same server, which has
// gone away (a restart leaves the pool's idle connections dead, and pgxpool
// pings only those idle for over a second before handing them out, so the
// first requests after a quick restart would each fail on one of them with
// "unexpected EOF"). A SELECT has no effect to repeat; an error from the
// server itself, or the caller's deadline, is returned as it is.
func read[T any](ctx context.Context, p *Postgres, fn pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	var out []T
	err := pgretry.Read(ctx, p.pool, func() error {
		rows, _ := p.pool.Query(ctx, sql, args...) // CollectRows returns Query's error
		var err error
		out, err = pgx.CollectRows(rows, fn)
		return err
	})
	return out, err
}

// Shape is how much data Seed writes.
type Shape struct{ Users, PostsPerUser, CommentsPerPost int }

// DefaultShape is the demo's data: 100 users, 100 posts each, 3 comments a
// post, so the article's query (users 100, posts 100) has something to read.
var DefaultShape = Shape{Users: 100, PostsPerUser: 100, CommentsPerPost: 3}

// rows returns Seed's data: post ids run user by user, comment authors cycle.
func (s Shape) rows() ([]*User, []*Post, []*Comment) {
	var us []*User
	var ps []*Post
	var cs []*Comment
	for u := 1; u <= s.Users; u++ {
		us = append(us, &User{ID: u, Name: fmt.Sprintf("user %d", u)})
		for i := range s.PostsPerUser {
			p := &Post{ID: len(ps) + 1, UserID: u, Title: fmt.Sprintf("post %d of user %d", i+1, u)}
			ps = append(ps, p)
			for j := range s.CommentsPerPost {
				cs = append(cs, &Comment{ID: len(cs) + 1, PostID: p.ID, AuthorID: (p.ID+j)%s.Users + 1, Body: fmt.Sprintf("comment %d on post %d", j+1, p.ID)})
			}
		}
	}
	return us, ps, cs
}

// Migrate creates schema's tables and writes shape's rows once. Concurrent
// callers take turns on an advisory lock; a schema already seeded is left as
// it is.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, shape Shape) error {
	if !identifier.MatchString(schema) {
		return fmt.Errorf("graph: schema %q is not a plain identifier", schema)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('part12.graph.' || $1))`, schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema+`;
			CREATE TABLE IF NOT EXISTS `+schema+`.users (id int PRIMARY KEY, name text NOT NULL);
			CREATE TABLE IF NOT EXISTS `+schema+`.posts (id int PRIMARY KEY, user_id int NOT NULL REFERENCES `+schema+`.users, title text NOT NULL);
			CREATE INDEX IF NOT EXISTS posts_user_id ON `+schema+`.posts (user_id, id);
			CREATE TABLE IF NOT EXISTS `+schema+`.comments (id int PRIMARY KEY, post_id int NOT NULL REFERENCES `+schema+`.posts,
				author_id int NOT NULL REFERENCES `+schema+`.users, body text NOT NULL);
			CREATE INDEX IF NOT EXISTS comments_post_id ON `+schema+`.comments (post_id, id);`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.users`).Scan(&n); err != nil || n > 0 {
			return err
		}
		us, ps, cs := shape.rows()
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "users"}, []string{"id", "name"},
			pgx.CopyFromSlice(len(us), func(i int) ([]any, error) { return []any{us[i].ID, us[i].Name}, nil })); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "posts"}, []string{"id", "user_id", "title"},
			pgx.CopyFromSlice(len(ps), func(i int) ([]any, error) { return []any{ps[i].ID, ps[i].UserID, ps[i].Title}, nil })); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "comments"}, []string{"id", "post_id", "author_id", "body"},
			pgx.CopyFromSlice(len(cs), func(i int) ([]any, error) { return []any{cs[i].ID, cs[i].PostID, cs[i].AuthorID, cs[i].Body}, nil }))
		return err
	})
}

// Statements returns how many statements PostgreSQL has executed that name
// one of schema's tables, from pg_stat_statements (the server counts, not the
// client). The extension must be preloaded (scripts/stack and
// docker-compose.yml start PostgreSQL with it); Statements creates it in the
// database if it is missing.
func Statements(ctx context.Context, pool *pgxpool.Pool, schema string) (int64, error) {
	if err := statStatements(ctx, pool); err != nil {
		return 0, err
	}
	var n int64
	err := pool.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND query LIKE '%' || $1 || '.%'`, schema).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pg_stat_statements (is it in shared_preload_libraries? `scripts/stack restart postgres`): %w", err)
	}
	return n, nil
}

// statStatements creates the pg_stat_statements extension in the database
// if it is missing. Two sessions running CREATE EXTENSION IF NOT EXISTS at
// once can both miss it and one then fails on pg_extension's unique index,
// so creators take turns on an advisory lock.
func statStatements(ctx context.Context, pool *pgxpool.Pool) error {
	var have bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_stat_statements')`).Scan(&have); err != nil || have {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('part12.pg_stat_statements'))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
		return err
	})
}

// Memory is the in-process Store the demo uses without PostgreSQL. Calls
// counts its method calls: the statements PostgreSQL would have run.
type Memory struct {
	users    []*User
	posts    []*Post
	comments []*Comment
	Calls    atomic.Int64
}

// NewMemory holds shape's rows, the same Migrate writes.
func NewMemory(shape Shape) *Memory {
	m := &Memory{}
	m.users, m.posts, m.comments = shape.rows()
	return m
}

func (m *Memory) Users(_ context.Context, limit int) ([]*User, error) {
	m.Calls.Add(1)
	return m.users[:min(limit, len(m.users))], nil
}

func (m *Memory) UsersByID(_ context.Context, ids []int) ([]*User, error) {
	m.Calls.Add(1)
	want := set(ids)
	var out []*User
	for _, u := range m.users {
		if want[u.ID] {
			out = append(out, u)
		}
	}
	return out, nil
}

func (m *Memory) PostsByUser(_ context.Context, userIDs []int, limit int) ([]*Post, error) {
	m.Calls.Add(1)
	return firstN(m.posts, limit, func(p *Post) int { return p.UserID }, userIDs), nil
}

func (m *Memory) CommentsByPost(_ context.Context, postIDs []int, limit int) ([]*Comment, error) {
	m.Calls.Add(1)
	return firstN(m.comments, limit, func(c *Comment) int { return c.PostID }, postIDs), nil
}

// firstN keeps up to n rows per parent among parents, ordered by parent as
// the SQL orders them.
func firstN[T any](rows []T, n int, parent func(T) int, parents []int) []T {
	count, want := map[int]int{}, set(parents)
	var out []T
	for _, r := range rows {
		p := parent(r)
		if count[p] < n && want[p] {
			count[p]++
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b T) int { return cmp.Compare(parent(a), parent(b)) })
	return out
}

func set(ids []int) map[int]bool {
	m := make(map[int]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}
