package slot

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The article's hash-tag snippet declares key1 and key2 with :=, then declares
// them again with := for the tagged keys, and uses neither. Placed in a
// function body, that shape does not compile; at package level := does not
// even parse. testdata/hashtagsnippet has it with other names; the type checker
// reports what go build would.
func TestArticleHashTagSnippetDoesNotCompile(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("testdata", "hashtagsnippet", "keys.go"), nil, 0)
	require.NoError(t, err, "the snippet's shape parses; it fails only in type checking")
	var errs []string
	conf := types.Config{Error: func(err error) { errs = append(errs, err.(types.Error).Msg) }}
	_, _ = conf.Check("hashtagsnippet", fset, []*ast.File{f}, nil)
	t.Logf("type errors: %q", errs)
	assert.ElementsMatch(t, []string{
		"no new variables on left side of :=",
		"no new variables on left side of :=",
		"declared and not used: items",
		"declared and not used: audit",
	}, errs)
	// At package level, where the snippet stands without a function around
	// it, := does not even parse.
	_, err = parser.ParseFile(token.NewFileSet(), "toplevel.go", "package p\n\nitems := \"order:42:items\"\n", 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expected declaration, found items", "go build: non-declaration statement outside function body")
	// Both forms as the snippet means them, one slot for the tagged pair.
	assert.NotEqual(t, Of("order:42:items"), Of("order:42:audit"))
	assert.Equal(t, Of("{order:42}:items"), Of("{order:42}:audit"))
}
