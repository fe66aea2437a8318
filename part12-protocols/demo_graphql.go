package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part12-protocols/graph"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// articleQuery is the article's "DDoS" query.
const articleQuery = `query DDoS { users(limit: 100) { posts(limit: 100) { comments { author { posts { comments { id } } } } } } }`

// nestedQuery is the N+1 experiment's query.
const nestedQuery = `{ users(limit: 20) { name posts(limit: 5) { title comments(limit: 3) { body author { name } } } } }`

// graphStore is where the GraphQL experiments read: the stack's PostgreSQL
// (schema part12) or the in-memory stand-in.
type graphStore struct {
	store graph.Store
	count func(context.Context) (int64, error) // statements (PostgreSQL) or calls (memory) so far
	what  string
	close func()
}

// openGraphStore uses PostgreSQL when it answers, else the stand-in, with a
// line saying so.
func openGraphStore(ctx context.Context, w io.Writer) (graphStore, error) {
	pool, err := openPostgres(ctx)
	if err != nil {
		m := graph.NewMemory(graph.DefaultShape)
		fmt.Fprintf(w, "PostgreSQL: not reachable (%v); the in-memory stand-in counts its calls instead of statements (`make up` or set %s to use it)\n", err, stack.EnvPostgres)
		return graphStore{store: m, count: func(context.Context) (int64, error) { return m.Calls.Load(), nil }, what: "calls to the in-memory store", close: func() {}}, nil
	}
	s, err := graph.NewPostgres(pool, "part12")
	if err != nil {
		pool.Close()
		return graphStore{}, err
	}
	return graphStore{store: s, count: func(ctx context.Context) (int64, error) { return graph.Statements(ctx, pool, "part12") },
		what: "statements PostgreSQL executed (pg_stat_statements)", close: pool.Close}, nil
}

// openPostgres connects to DATABASE_URL and creates schema part12's tables,
// giving up within a few seconds so the demo stays quick without a database.
func openPostgres(ctx context.Context) (*pgxpool.Pool, error) {
	if err := stack.Reachable(stack.Postgres, time.Second); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, stack.DatabaseURL())
	if err != nil {
		return nil, err
	}
	if err := graph.Migrate(ctx, pool, "part12", graph.DefaultShape); err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := graph.Statements(ctx, pool, "part12"); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// graphqlDemo shows the cost limit on the article's query and counts the N+1.
func graphqlDemo(ctx context.Context, w io.Writer, _ options) error {
	fmt.Fprintf(w, "== GraphQL: the article's cost limit (%d) and the N+1 its DataLoader removes ==\n", graph.DefaultCostLimit)
	gs, err := openGraphStore(ctx, w)
	if err != nil {
		return err
	}
	defer gs.close()
	tw := table(w)
	fmt.Fprintln(tw, "query\tcost")
	for _, q := range []string{
		`{ users(limit: 100) { posts(limit: 100) { id } } }`,
		`{ users(limit: 100) { posts(limit: 100) { comments { id } } } }`,
		articleQuery,
		nestedQuery,
	} {
		c, err := graph.QueryCost(q, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\n", q, c)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "cost = Σ over fields of base (1 for an object or list, 0 for a scalar) × ∏ of the parents' limits (default 10):")
	fmt.Fprintln(w, "the article's comments field alone is 10101 - 101 = 10000 = 1 × 100 × 100.")
	h := graph.NewHandler(graph.Options{Store: gs.store, Ping: &ping.Service{}})
	msg, _, err := graphqlPost(h, articleQuery)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "the article's query, sent: %s\n\n", msg)

	fmt.Fprintf(w, "%s\n", nestedQuery)
	tw = table(w)
	fmt.Fprintf(tw, "resolvers\t%s\ttook\n", gs.what)
	for _, o := range []struct {
		name string
		opts graph.Options
	}{
		{"one query per parent (N+1)", graph.Options{Store: gs.store, Ping: &ping.Service{}, NoDataLoader: true}},
		{"DataLoader, 5 ms wait (the article's)", graph.Options{Store: gs.store, Ping: &ping.Service{}}},
	} {
		before, err := gs.count(ctx)
		if err != nil {
			return err
		}
		start := time.Now()
		errs, _, err := graphqlPost(graph.NewHandler(o.opts), nestedQuery)
		if err != nil {
			return err
		}
		if errs != "" {
			return fmt.Errorf("%s: %s", o.name, errs)
		}
		took := time.Since(start)
		after, err := gs.count(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", o.name, after-before, ms(took))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "1 + 20 + 100 + 300 without loaders; with them one query per level (users, posts, comments, authors) when every")
	fmt.Fprintln(w, "resolver of a level asks within the wait: a loaded machine can split a level into two batches (the test fakes the clock).")
	fmt.Fprintln(w)
	return nil
}

// graphqlPost sends query to h and returns its errors' messages, joined.
func graphqlPost(h http.Handler, query string) (string, json.RawMessage, error) {
	body, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		return "", nil, err
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		return "", nil, errors.Join(err, fmt.Errorf("body: %s", rec.Body.String()))
	}
	var msgs []string
	for _, e := range r.Errors {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, "; "), r.Data, nil
}
