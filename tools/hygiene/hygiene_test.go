// Package hygiene checks a rule of the project's tests that the compiler cannot:
// only the test's own goroutine may stop a test. t.Fatal, t.FailNow, t.Skip and
// testify's require.* call runtime.Goexit, which on any other goroutine ends that
// goroutine instead of the test, so the test hangs or passes wrongly. Goroutines
// report back with assert.* or over a channel.
package hygiene

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sysdesign-masterclass/golang/tools/internal/repo"
)

// stops reports whether call ends the calling goroutine through testing.
func stops(call *ast.CallExpr) (string, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	name := sel.Sel.Name
	if x, ok := sel.X.(*ast.Ident); ok && x.Name == "require" {
		return "require." + name, true
	}
	switch name {
	case "Fatal", "Fatalf", "FailNow", "Skip", "Skipf", "SkipNow":
		if x, ok := sel.X.(*ast.Ident); ok && (x.Name == "t" || x.Name == "b" || x.Name == "tb") {
			return x.Name + "." + name, true
		}
	}
	return "", false
}

func TestNoTestStopsOffTheTestGoroutine(t *testing.T) {
	root := repo.Root(t)
	fset := token.NewFileSet()
	files := 0
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			g, ok := n.(*ast.GoStmt)
			if !ok {
				return true
			}
			lit, ok := g.Call.Fun.(*ast.FuncLit)
			if !ok {
				return true
			}
			ast.Inspect(lit.Body, func(n ast.Node) bool {
				if _, nested := n.(*ast.FuncLit); nested {
					return false // a closure defined here may well run on the test goroutine
				}
				if c, ok := n.(*ast.CallExpr); ok {
					if what, bad := stops(c); bad {
						rel, _ := filepath.Rel(root, fset.Position(c.Pos()).Filename)
						assert.Fail(t, "test stopped off the test goroutine",
							"%s:%d: %s inside a go statement (use assert.* or send the error back)", rel, fset.Position(c.Pos()).Line, what)
					}
				}
				return true
			})
			return true
		})
		return nil
	}))
	assert.Greater(t, files, 50, "test files scanned")
}
