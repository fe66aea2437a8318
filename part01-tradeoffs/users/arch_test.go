package users

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/"

// allowed lists, for each ring, the rings it may import (the doc.go table).
var allowed = map[string][]string{
	"domain":   {},
	"port":     {"domain"},
	"service":  {"domain", "port"},
	"httpapi":  {"domain"},
	"memory":   {"domain", "port"},
	"postgres": {"domain", "port"},
	"contract": {"domain", "port"},
}

// forbiddenInCore are infrastructure imports the inner rings must not need.
var forbiddenInCore = []string{"net/http", "encoding/json", "database/sql", "github.com/jackc/pgx"}

func TestDependencyRule(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	seen := 0
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "testdata" {
			continue
		}
		ring := e.Name()
		rules, ok := allowed[ring]
		if !assert.True(t, ok, "package users/%s is not in the dependency table; add it to doc.go and allowed", ring) {
			continue
		}
		seen++
		for _, imp := range imports(t, ring) {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				assert.Contains(t, rules, dep, "users/%s imports users/%s", ring, dep)
				continue
			}
			if ring == "domain" || ring == "port" || ring == "service" {
				for _, bad := range forbiddenInCore {
					assert.False(t, strings.HasPrefix(imp, bad), "inner ring users/%s imports %s", ring, imp)
				}
			}
		}
	}
	assert.Equal(t, len(allowed), seen, "rings found vs rings in the table")
}

// imports returns the import paths of the non-test Go files in dir.
func imports(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range parsed.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			out = append(out, path)
		}
	}
	return out
}
