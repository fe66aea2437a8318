package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExit(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"success", nil, 0, ""},
		{"help", flag.ErrHelp, 0, ""},
		{"help wrapped", fmt.Errorf("parse: %w", flag.ErrHelp), 0, ""},
		{"usage", Usagef("usage: demo [-n N]", "-n %d is out of range 1..10", 0), 2,
			"demo: -n 0 is out of range 1..10\n\nusage: demo [-n N]\n"},
		{"usage wrapped, full text", fmt.Errorf("ctx: %w", &UsageError{Err: errors.New("unknown -mode \"x\""), Usage: "usage: demo\n\nflags:\n  -mode\n"}), 2,
			"demo: unknown -mode \"x\"\n\nusage: demo\n\nflags:\n  -mode\n"},
		{"failure", errors.New("stampede: redis stopped answering"), 1, "demo: stampede: redis stopped answering\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			assert.Equal(t, tt.code, Exit("demo", tt.err, &stderr))
			assert.Equal(t, tt.stderr, stderr.String())
		})
	}
}

func TestUsageErrorUnwraps(t *testing.T) {
	base := errors.New("bad")
	err := error(&UsageError{Err: base})
	assert.ErrorIs(t, err, base)
	assert.Equal(t, "bad", err.Error())
}

// TestMain lets TestMainExits re-run this test binary as a command built on Main.
func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv("CLI_TEST_MAIN"); ok {
		os.Args = append([]string{"demo"}, strings.Fields(os.Getenv("CLI_TEST_ARGS"))...)
		Main("demo", func(ctx context.Context, args []string, w io.Writer) error {
			switch mode {
			case "usage":
				return Usagef("usage: demo", "unexpected argument %q", args[0])
			case "fail":
				return errors.New("it broke")
			case "signal":
				fmt.Fprintln(w, "ready")
				<-ctx.Done() // the process's SIGTERM cancels ctx
				fmt.Fprintln(w, "stopped")
				return nil
			}
			fmt.Fprintln(w, "ran")
			return nil
		})
	}
	os.Exit(m.Run())
}

func TestMainExits(t *testing.T) {
	for _, tt := range []struct {
		mode, arg      string
		code           int
		stdout, stderr string
	}{
		{"ok", "", 0, "ran\n", ""},
		{"usage", "stray", 2, "", "demo: unexpected argument \"stray\"\n\nusage: demo\n"},
		{"fail", "", 1, "", "demo: it broke\n"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "CLI_TEST_MAIN="+tt.mode, "CLI_TEST_ARGS="+tt.arg)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.code, code)
			assert.Equal(t, tt.stdout, stdout.String())
			assert.Equal(t, tt.stderr, stderr.String())
		})
	}
}

// TestMainCancelsOnSIGTERM: the context run gets ends on SIGTERM (and Ctrl-C), so
// a server drains and returns nil: exit 0.
func TestMainCancelsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CLI_TEST_MAIN=signal")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, len("ready\n"))
		_, err := io.ReadFull(out, buf)
		ready <- err
	}()
	select {
	case err := <-ready:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the command never said it was ready")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	rest, err := io.ReadAll(out)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait(), "exit status after SIGTERM")
	assert.Equal(t, "stopped\n", string(rest))
}

func TestServeDrainsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	started, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release // a request still in flight when Ctrl-C comes
		_, _ = io.WriteString(w, "done")
	})}
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, &out, srv, ln, 10*time.Second) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if !assert.NoError(t, err) {
			got <- ""
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	close(release)
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	assert.Equal(t, "done", <-got, "the request in flight was drained, not cut")
	assert.Equal(t, "stopped\n", out.String())
	_, err = net.Dial("tcp", ln.Addr().String())
	assert.Error(t, err, "the listener is closed")
}

func TestServeReturnsTheServersError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, ln.Close()) // Serve fails at once on a closed listener
	var out bytes.Buffer
	assert.Error(t, Serve(t.Context(), &out, &http.Server{}, ln, time.Second))
	assert.Empty(t, out.String())
}
