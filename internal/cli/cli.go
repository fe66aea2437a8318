// Package cli is the command-line contract every chapter's main.go keeps, so a
// reader who knows one demo knows all: main only calls Main; run parses its own
// flag.FlagSet and returns a *UsageError for a mistake on the command line, found
// before anything runs. Exit statuses mean the same in every chapter:
//
//	0  the run finished, or -h printed the usage (on stdout)
//	1  the run failed (a service died mid-run, a write was refused, ...)
//	2  a usage error: the message and the usage on stderr, nothing run
//
// The rest is what the chapters' main.go files share, so each keeps only what is
// its own (its modes, flags and checks):
//
//	var modes = cli.Modes[options]{
//		{Name: "tradeoff", About: "the 3D trade-off table, computed", Run: tradeoffDemo},
//		...
//	}
//
//	func run(ctx context.Context, args []string, w io.Writer) error {
//		o, err := parse(args) // on a cli.NewFlagSet; values checked with modes.Check, OneOf, InRange
//		if err != nil {
//			return cli.ParseFailed(w, err, usageText()) // -h: the usage on w, exit 0; else exit 2
//		}
//		return modes.Run(ctx, w, o.mode, o)
//	}
//
// usageText is the usage lines, then modes.WriteUsage and WriteFlags. A chapter
// with more to do around its modes (a subcommand, shared services, a per-mode
// time limit) keeps that in its own run and loops over modes itself.
package cli

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

// Run is a chapter's main without the process: tests call it with their own
// arguments, output and context.
type Run func(ctx context.Context, args []string, stdout io.Writer) error

// Main runs run with the process's arguments and a context that Ctrl-C (SIGINT)
// or SIGTERM cancels, so servers drain and demos stop cleanly, then exits with
// Exit's status.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Exit(name, run(ctx, os.Args[1:], os.Stdout), os.Stderr)
	stop()
	os.Exit(code)
}

// UsageError is a mistake on the command line: an unknown mode or flag, a stray
// argument, a value out of range.
type UsageError struct {
	Err   error  // what is wrong, in one line
	Usage string // the usage to print after it (a line, or the full text with flags)
}

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with a formatted message.
func Usagef(usage, format string, args ...any) *UsageError {
	return &UsageError{Err: fmt.Errorf(format, args...), Usage: usage}
}

// Exit reports err on stderr, prefixed with the command's name, and returns the
// exit status (see the package doc). flag.ErrHelp counts as success: run printed
// the usage to stdout because it was asked to.
func Exit(name string, err error, stderr io.Writer) int {
	var usage *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %v\n\n%s", name, usage.Err, usage.Usage)
		if n := len(usage.Usage); n > 0 && usage.Usage[n-1] != '\n' {
			fmt.Fprintln(stderr)
		}
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}

// Serve serves srv on ln until ctx ends (Ctrl-C), then stops accepting, drains
// in-flight requests for up to drain, and prints "stopped" to w. It returns nil
// after a clean stop, and the server's error if it failed or could not drain.
func Serve(ctx context.Context, w io.Writer, srv *http.Server, ln net.Listener, drain time.Duration) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "stopped")
	return nil
}
