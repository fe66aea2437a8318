// Command part01-tradeoffs is the runnable companion to Part 1 of the System
// Design Masterclass: availability arithmetic, the PACELC table, a CAP
// partition you can watch, and the article's Clean Architecture users API.
//
//	go run ./part01-tradeoffs                      # every scenario
//	go run ./part01-tradeoffs -mode partition      # one scenario
//	go run ./part01-tradeoffs -serve :8080         # serve the users API until Ctrl-C
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// modes lists the scenarios in the order "all" runs them.
var modes = []struct {
	name string
	run  func(ctx context.Context, w io.Writer, store string) error
}{
	{"availability", func(_ context.Context, w io.Writer, _ string) error { return availabilityDemo(w) }},
	{"pacelc", func(_ context.Context, w io.Writer, _ string) error { return pacelcDemo(w) }},
	{"partition", func(_ context.Context, w io.Writer, _ string) error { return partitionDemo(w) }},
	{"users", usersDemo},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "part01-tradeoffs:", err)
		os.Exit(1)
	}
}

// run is main without the process: tests call it with their own args, output
// and context.
func run(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("part01-tradeoffs", flag.ContinueOnError)
	fs.SetOutput(w)
	mode := fs.String("mode", "all", "scenario: all | availability | pacelc | partition | users")
	serve := fs.String("serve", "", "serve the users API on this address (e.g. :8080) until Ctrl-C, instead of the scenarios")
	store := fs.String("store", "auto", "users storage: auto (PostgreSQL if reachable, else in-memory) | postgres | memory")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./part01-tradeoffs [-mode M] [-store S] [-serve ADDR]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; see -h", fs.Args())
	}
	if *serve != "" {
		return serveAPI(ctx, w, *serve, *store)
	}
	ran := false
	for _, m := range modes {
		if *mode != "all" && *mode != m.name {
			continue
		}
		ran = true
		if err := m.run(ctx, w, *store); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	if !ran {
		return fmt.Errorf("unknown -mode %q; see -h", *mode)
	}
	return nil
}

// serveAPI serves the users API on addr until ctx ends (Ctrl-C), then drains
// in-flight requests for up to five seconds.
func serveAPI(ctx context.Context, w io.Writer, addr, store string) error {
	api, closeStore, err := openAPI(ctx, w, store)
	if err != nil {
		return err
	}
	defer closeStore()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(w, "serving the users API on http://%s — Ctrl-C stops\n", ln.Addr())
	fmt.Fprintf(w, "  curl -X PUT -d '{\"name\":\"Ada\",\"email\":\"ada@example.com\"}' http://%s/users/ada\n", ln.Addr())
	fmt.Fprintf(w, "  curl http://%s/users/ada\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(w, "stopped")
	return nil
}
