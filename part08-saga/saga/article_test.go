package saga

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The article's `var saga workflow.Saga` does not compile: the Go SDK's workflow
// package declares no Saga (the Java SDK's io.temporal.workflow.Saga, with its
// setParallelCompensation, is where it comes from). This reads the workflow
// package of the SDK version go.mod pins and lists its top-level names.
func TestArticleSagaTypeDoesNotExist(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}\n{{range .GoFiles}}{{.}}\n{{end}}", "go.temporal.io/sdk/workflow").Output()
	require.NoError(t, err, "go list")
	lines := strings.Fields(string(out))
	require.Greater(t, len(lines), 1)
	dir := lines[0]
	names := map[string]bool{}
	for _, file := range lines[1:] {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, file), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		{
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil {
						names[d.Name.Name] = true
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							names[s.Name.Name] = true
						case *ast.ValueSpec:
							for _, n := range s.Names {
								names[n.Name] = true
							}
						}
					}
				}
			}
		}
	}
	require.True(t, names["ExecuteActivity"], "the workflow package was read (%s)", dir)
	assert.True(t, names["NewDisconnectedContext"], "what compensations need instead")
	assert.False(t, names["Saga"], "workflow.Saga")
	assert.False(t, names["NewSaga"], "workflow.NewSaga")
}
