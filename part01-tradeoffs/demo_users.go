package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/httpapi"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/memory"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/postgres"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/service"
)

// usersDemo sends a few requests through the real HTTP stack (a loopback
// server) and prints each status and body.
func usersDemo(ctx context.Context, w io.Writer, store string) error {
	fmt.Fprintln(w, "== Clean Architecture: HTTP handler → UserService → UserRepository port → adapter ==")
	api, closeStore, err := openAPI(ctx, w, store)
	if err != nil {
		return err
	}
	defer closeStore()
	srv := httptest.NewServer(api)
	defer srv.Close()
	client := srv.Client()

	tw := table(w)
	fmt.Fprintln(tw, "request\tstatus\tbody")
	for _, req := range []struct{ method, path, body string }{
		{"PUT", "/users/demo-ada", `{"name":"Ada Lovelace","email":"ada@Example.COM"}`},
		{"GET", "/users/demo-ada", ""},
		{"GET", "/users/demo-nobody", ""},
		{"PUT", "/users/demo-bad", `{"name":"Bad","email":"not-an-email"}`},
		{"PUT", "/users/bad%20id", `{"name":"Bad","email":"bad@example.com"}`},
		{"DELETE", "/users/demo-ada", ""},
	} {
		r, err := http.NewRequestWithContext(ctx, req.method, srv.URL+req.path, strings.NewReader(req.body))
		if err != nil {
			return err
		}
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s %s %s\t%d\t%s\n", req.method, req.path, req.body, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// openAPI wires the users API to the storage -store asks for and says which
// one it got. "auto" uses PostgreSQL when it answers and otherwise falls back
// to the in-memory adapter, so the demo runs on a fresh clone.
func openAPI(ctx context.Context, w io.Writer, store string) (http.Handler, func(), error) {
	var (
		repo    port.UserRepository
		closeFn = func() {}
	)
	switch store {
	case "memory":
		repo = memory.New()
		fmt.Fprintln(w, "storage: in-memory adapter (-store memory)")
	case "auto", "postgres":
		pool, err := openPostgres(ctx)
		switch {
		case err == nil:
			repo, closeFn = postgres.New(pool), pool.Close
			fmt.Fprintf(w, "storage: PostgreSQL adapter, table part01.users at %s\n", redacted(stack.DatabaseURL()))
		case store == "auto":
			repo = memory.New()
			fmt.Fprintf(w, "storage: in-memory adapter — PostgreSQL unavailable (%v); run `make up` or set %s to use it\n", err, stack.EnvPostgres)
		default:
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("unknown -store %q; see -h", store)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	return httpapi.New(service.New(repo), log), closeFn, nil
}

// openPostgres connects to DATABASE_URL and runs the chapter's migration,
// giving up within a few seconds so the demo stays quick without a database.
func openPostgres(ctx context.Context) (*pgxpool.Pool, error) {
	if err := stack.Reachable(stack.Postgres, time.Second); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, stack.DatabaseURL())
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// redacted hides the password in a connection URL before it is printed.
func redacted(dsn string) string {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return "(unparseable DATABASE_URL)"
	}
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}
