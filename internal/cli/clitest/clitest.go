// Package clitest holds the checks every chapter's main_test.go makes of its
// run(ctx, args, w): table rows in the output, usage errors, a writer that
// hands a server's lines to the test as they are printed.
package clitest

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli"
)

// Run is a chapter's run function.
type Run func(ctx context.Context, args []string, w io.Writer) error

var columns = regexp.MustCompile(`\s{2,}`)

// Row returns the cells of the first table row of out whose first cells are
// prefix, split on the two or more spaces tabwriter puts between columns.
func Row(t testing.TB, out string, prefix ...string) []string {
	t.Helper()
	for line := range strings.Lines(out) {
		cells := columns.Split(strings.TrimSpace(line), -1)
		if len(cells) >= len(prefix) && slices.Equal(cells[:len(prefix)], prefix) {
			return cells
		}
	}
	require.Failf(t, "no table row", "starting with %q in:\n%s", prefix, out)
	return nil
}

// UsageError asserts that args are a command-line mistake: exit status 2, the
// message (prefixed by the command's name) and the usage on stderr, nothing
// on stdout.
func UsageError(t *testing.T, name string, run Run, args []string, msg string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, cli.Exit(name, run(t.Context(), args, &stdout), &stderr))
	assert.Empty(t, stdout.String(), "nothing printed as if it had run")
	assert.Contains(t, stderr.String(), name+": "+msg)
	assert.Contains(t, stderr.String(), "usage: go run ./"+name, "the usage follows the message")
}

// Lines is an io.Writer that hands each write to the test as it happens.
type Lines chan string

func (l Lines) Write(p []byte) (int, error) { l <- string(p); return len(p), nil }
