// Package repo finds the repository the tools' checks read.
package repo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Root walks up from the test's working directory (its package folder) to the
// folder holding scripts/stack: the repository root.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "stack")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "scripts/stack not found above the working directory")
		dir = parent
	}
}
