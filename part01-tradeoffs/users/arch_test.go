package users

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
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
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		ring := e.Name()
		rules, ok := allowed[ring]
		if !ok {
			t.Errorf("package users/%s is not in the dependency table; add it to doc.go and allowed", ring)
			continue
		}
		seen++
		for _, imp := range imports(t, ring) {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				if !slices.Contains(rules, dep) {
					t.Errorf("users/%s imports users/%s; allowed: %v", ring, dep, rules)
				}
				continue
			}
			if ring == "domain" || ring == "port" || ring == "service" {
				for _, bad := range forbiddenInCore {
					if strings.HasPrefix(imp, bad) {
						t.Errorf("inner ring users/%s imports %s", ring, imp)
					}
				}
			}
		}
	}
	if seen != len(allowed) {
		t.Errorf("found %d of the %d rings in the table", seen, len(allowed))
	}
}

// imports returns the import paths of the non-test Go files in dir.
func imports(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, path)
		}
	}
	return out
}
