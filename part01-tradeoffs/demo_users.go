package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/availability"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/httpapi"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/memory"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/postgres"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/service"
)

// usersDemo sends a few requests through the real HTTP stack (a loopback
// server), prints each status and body, then measures a latency SLI.
func usersDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== Clean Architecture: HTTP handler → UserService → UserRepository port → adapter ==")
	api, closeStore, err := openAPI(ctx, w, o.store, stderrLog())
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
		{"PUT", "/users/demo-long", `{"name":"Long","email":"` + strings.Repeat("a", 250) + `@example.com"}`},
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
		fmt.Fprintf(tw, "%s %s %s\t%d\t%s\n", req.method, req.path, abbrev(req.body), resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return sliDemo(ctx, w, client, srv.URL, o.requests, o.sliWindow)
}

// abbrev shortens long runs of one character in a request body: a 250-byte
// local part prints as "aaaa…(250)".
func abbrev(s string) string {
	for i := 0; i < len(s); i++ {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if j-i > 8 {
			return s[:i+4] + fmt.Sprintf("…(%d)", j-i) + abbrev(s[j:])
		}
	}
	return s
}

// The article's latency SLO, the one the error budget in -mode availability
// is computed for: "99.9% of requests must complete in < 150ms".
const (
	sloTarget    = 0.999
	sloThreshold = 150 * time.Millisecond
	sliClients   = 4
	sliUsers     = 8
)

// sliDemo sends requests (nine GETs to one PUT) from a few concurrent clients,
// times each one, and computes the SLI the article only quotes: latency
// quantiles, and the share of good requests (2xx and under the threshold)
// against the SLO and its error budget. Every request of the run must answer
// 200; any other status or a transport error counts as bad.
func sliDemo(ctx context.Context, w io.Writer, client *http.Client, base string, requests int, window time.Duration) error {
	type result struct {
		at, d  time.Duration
		status int
		err    error
	}
	send := func(method string, i int) (int, error) {
		body := ""
		if method == "PUT" {
			body = fmt.Sprintf(`{"name":"SLI %d","email":"sli%d@example.com"}`, i, i)
		}
		r, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("%s/users/demo-sli-%d", base, i%sliUsers), strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(r)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	for i := range sliUsers { // untimed: every GET below finds its user
		if status, err := send("PUT", i); err != nil || status != http.StatusOK {
			return fmt.Errorf("create demo-sli-%d: status %d, %v", i, status, err)
		}
	}
	results := make(chan result, requests)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range sliClients {
		wg.Go(func() {
			for i := range jobs {
				method := "GET"
				if i%10 == 0 {
					method = "PUT"
				}
				t0 := time.Now()
				status, err := send(method, i)
				results <- result{at: t0.Sub(start), d: time.Since(t0), status: status, err: err}
			}
		})
	}
	for i := range requests {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	close(results)

	samples := make([]time.Duration, 0, requests)
	timed := make([]availability.Timed, 0, requests)
	var failed int
	for r := range results {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.err != nil || r.status != http.StatusOK {
			failed++
		}
		samples = append(samples, r.d)
		timed = append(timed, availability.Timed{At: r.at, Took: r.d})
	}
	lat := availability.NewLatencies(samples)
	good := lat.Under(sloThreshold) - failed
	b, err := availability.NewBudget(sloTarget, availability.Month)
	if err != nil {
		return err
	}
	bad := uint64(requests - good)
	verdict := "met"
	if float64(good) < sloTarget*float64(requests) {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "SLI, measured in this run: %s requests (9 GET : 1 PUT, %d clients) in %s\n", thousands(requests), sliClients, human(elapsed))
	fmt.Fprintf(w, "  latency over the whole run: p50 %s, p99 %s, p99.9 %s, max %s\n",
		ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99)), ms(lat.Quantile(0.999)), ms(lat.Quantile(1)))
	fmt.Fprintf(w, "  %s\n", windowSLI(availability.Windows(timed, window), window, elapsed))
	fmt.Fprintf(w, "  SLO \"99.9%% of requests < 150 ms\": %.3f%% good (%s slow or failed; the budget allows %s of %s) → %s, %s of the budget left\n",
		100*float64(good)/float64(requests), thousands(bad), thousands(b.AllowedBad(uint64(requests))), thousands(requests),
		verdict, percent(max(b.Remaining(bad, uint64(requests)), 0)))
	fmt.Fprintln(w)
	return nil
}

func stderrLog() *slog.Logger { return slog.New(slog.NewTextHandler(os.Stderr, nil)) }

// openAPI wires the users API to the storage -store asks for and says which
// one it got. "auto" uses PostgreSQL when it answers and otherwise falls back
// to the in-memory adapter, so the demo runs on a fresh clone. The handler
// logs the causes of its 500 and 503 answers to log.
func openAPI(ctx context.Context, w io.Writer, store string, log *slog.Logger) (http.Handler, func(), error) {
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
	}
	return httpapi.New(service.New(repo), httpapi.Config{Log: log}), closeFn, nil
}

// openPostgres connects to DATABASE_URL and runs the chapter's migration,
// giving up within a few seconds so the demo stays quick without a database.
func openPostgres(ctx context.Context) (*pgxpool.Pool, error) {
	if err := stack.Reachable(stack.Postgres, time.Second); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := postgres.Config(stack.DatabaseURL())
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
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

// serveAPI serves the users API on o.serve until ctx ends (Ctrl-C), then
// drains in-flight requests for up to five seconds.
func serveAPI(ctx context.Context, w io.Writer, o options) error {
	api, closeStore, err := openAPI(ctx, w, o.store, stderrLog())
	if err != nil {
		return err
	}
	defer closeStore()
	ln, err := net.Listen("tcp", o.serve)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(w, "serving the users API on http://%s — Ctrl-C stops\n", ln.Addr())
	fmt.Fprintf(w, "  curl -X PUT -d '{\"name\":\"Ada\",\"email\":\"ada@example.com\"}' http://%s/users/ada\n", ln.Addr())
	fmt.Fprintf(w, "  curl http://%s/users/ada\n", ln.Addr())
	return cli.Serve(ctx, w, srv, ln, 5*time.Second)
}

// windowSLI describes the SLI as the article defines it, a p99 per window
// ("p99 latency over 1 minute = 120ms"): one line, whether the run fits in one
// window or spans several.
func windowSLI(ws []availability.Window, width, elapsed time.Duration) string {
	if len(ws) == 1 {
		return fmt.Sprintf("SLI p99 per %v window (the article's example: p99 over 1 minute = 120 ms): the run (%s) fits in one window, p99 %s",
			width, human(elapsed), ms(ws[0].Latencies.Quantile(0.99)))
	}
	p99 := make([]time.Duration, len(ws))
	for i, win := range ws {
		p99[i] = win.Latencies.Quantile(0.99)
	}
	per := availability.NewLatencies(p99)
	return fmt.Sprintf("SLI p99 per %v window (the article's example: p99 over 1 minute = 120 ms): %d windows, p99 from %s to %s (median window %s)",
		width, len(ws), ms(per.Quantile(0)), ms(per.Quantile(1)), ms(per.Quantile(0.5)))
}
