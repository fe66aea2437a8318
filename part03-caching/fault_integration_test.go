//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// TestFaultRedisDiesMidDemo runs `go run ./part03-caching -mode stampede` (this test
// binary, running main) against the stack, kills or pauses the stack's Redis once the
// stampede section has started, and checks what the reader sees: a few lines on
// stderr that name the section, the failed service and the command that brings it
// back, no go-redis log noise, and a non-zero exit status, within seconds.
//
// It breaks a shared service, so `make test` runs it after the other tests, alone.
func TestFaultRedisDiesMidDemo(t *testing.T) {
	stack.Require(t, stack.Redis)
	for _, tc := range []struct {
		fault, fix string
		breakIt    func(testing.TB, string)
		heal       func(testing.TB, string)
	}{
		{"kill", "scripts/stack restart redis", stack.Kill, stack.Restart},
		{"pause", "scripts/stack resume redis", stack.Pause, stack.Resume},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PART03_RUN_MAIN=1", "PART03_ARGS=-mode stampede -ttl 2s -n 2000")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())

			started := make(chan struct{})
			var out strings.Builder
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					out.WriteString(sc.Text() + "\n")
					if strings.HasPrefix(sc.Text(), "== Stampede") {
						close(started)
					}
				}
				_, _ = io.Copy(io.Discard, stdout)
			}()
			select {
			case <-started:
			case <-ctx.Done():
				t.Fatalf("the stampede section never started:\n%s\n%s", out.String(), stderr.String())
			}
			brokeAt := time.Now()
			tc.breakIt(t, "redis")
			<-copied
			err = cmd.Wait()
			took := time.Since(brokeAt)
			tc.heal(t, "redis")

			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "the demo exited 0 after Redis was broken:\n%s", out.String())
			assert.NotZero(t, exit.ExitCode())
			msg := stderr.String()
			t.Logf("%s: exit %d after %v; stderr:\n%s", tc.fault, exit.ExitCode(), took.Round(time.Millisecond), msg)
			assert.LessOrEqual(t, strings.Count(msg, "\n"), 4, "more than a few lines on stderr")
			assert.Contains(t, msg, "part03-caching: stampede: redis at ")
			assert.Contains(t, msg, tc.fix)
			assert.Contains(t, msg, "go run ./part03-caching -mode stampede")
			assert.NotContains(t, msg, "failed to dial", "go-redis's logger is not muted")
			assert.Less(t, took, 30*time.Second, "a generous bound: the demo's Redis timeouts are 1 s")
			assert.NotContains(t, out.String(), "plain TTL", "a table was printed from a run against a dead Redis")
		})
	}
}
