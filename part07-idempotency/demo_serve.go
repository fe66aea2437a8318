package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/payments"
)

// serve runs the payments API behind the middleware on o.addr until ctx ends
// (Ctrl-C), then drains in-flight requests for up to five seconds.
func serve(ctx context.Context, w io.Writer, o options) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	b, repo, where, err := openServeStores(ctx, o.store)
	if err != nil {
		return err
	}
	defer b.close()
	mw, err := idempotency.New(idempotency.Config{Store: b.store, Required: true, Log: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mw.Wrap(payments.NewHandler(repo, payments.Options{Log: log})), ReadHeaderTimeout: 5 * time.Second}
	addr := ln.Addr().String()
	fmt.Fprintf(w, "serving the payments API on http://%s — Ctrl-C stops\n", addr)
	fmt.Fprintf(w, "  idempotency records: %s (%s)\n  payments: %s\n", b.name, b.where, where)
	fmt.Fprintf(w, "  curl -i -X POST -H 'Idempotency-Key: order-1' -H 'X-Tenant-ID: acme' -d '{\"amount\":100}' http://%s/payments   # twice: the second is a replay\n", addr)
	fmt.Fprintf(w, "  curl -s -H 'X-Tenant-ID: acme' http://%s/payments\n", addr)
	return cli.Serve(ctx, w, srv, ln, 5*time.Second)
}

// openServeStores picks where serve keeps state. memory: everything in this
// process. auto: records in Redis, else PostgreSQL, else memory; payments in
// PostgreSQL when it answers, else memory. redis, postgres: that store for
// the records, required.
func openServeStores(ctx context.Context, which string) (backend, payments.Repo, string, error) {
	if which == "memory" {
		b, err := openBackend(ctx, "memory", false)
		return b, payments.NewMemory(), "in memory (-store memory)", err
	}
	b, err := stormBackend(ctx, which)
	if err != nil {
		return backend{}, nil, "", err
	}
	if b.pool != nil {
		return b, payments.NewPostgres(b.pool), "PostgreSQL, table part07.payments", nil
	}
	pool, err := openPostgres(ctx)
	if err != nil {
		return b, payments.NewMemory(), fmt.Sprintf("in memory — PostgreSQL unavailable (%v); `make up` to keep them in part07.payments", err), nil
	}
	closeStore := b.close
	b.close = func() { closeStore(); pool.Close() }
	return b, payments.NewPostgres(pool), "PostgreSQL, table part07.payments", nil
}
