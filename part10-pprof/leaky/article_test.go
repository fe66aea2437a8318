package leaky

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/gocmd"
)

// The article's leak and fix snippets use a Result type and an
// expensiveWork function it never defines, and http, time and context with
// no imports. testdata/articlehandlers has that shape; the type checker
// reports what go build would. Here they are Result, Backend and the
// package's imports.
func TestArticleHandlerSnippetsDoNotCompile(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("testdata", "articlehandlers", "handlers.go"), nil, 0)
	require.NoError(t, err, "it parses; it fails only in type checking")
	undefined := map[string]bool{}
	conf := types.Config{Error: func(err error) { undefined[err.(types.Error).Msg] = true }}
	_, _ = conf.Check("articlehandlers", fset, []*ast.File{f}, nil)
	var msgs []string
	for m := range undefined {
		msgs = append(msgs, m)
	}
	slices.Sort(msgs)
	assert.Equal(t, []string{"undefined: answer", "undefined: context", "undefined: http", "undefined: slowLookup", "undefined: time"}, msgs)
}

// The case study's bug, a Builder for the server's lifetime written by every
// request, is a data race as well as a leak: requests run concurrently. The
// race detector reports it. auditLeaky keeps the leak and takes a mutex, so
// that the diagnosis finds the leak and -race finds nothing.
func TestArticleSharedBuilderIsADataRace(t *testing.T) {
	dir := gocmd.Module(t, filepath.Join("testdata", "sharedbuilder"), "example.com/sharedbuilder")
	out, err := gocmd.Run(t, dir, "run", "-race", ".")
	require.Error(t, err, "the race detector exits with status 66")
	assert.Contains(t, out, "WARNING: DATA RACE")
	assert.Contains(t, out, "strings.(*Builder).WriteString")
}

// stackInUse is the bytes of stack spans in use after a collection (which
// returns the spans whose stacks are all free), and the size a new
// goroutine's stack starts at.
func stackInUse() (inUse, starting uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	return ms.StackInuse, s[0].Value.Uint64()
}

// "Memory grows proportionally to the stack size of leaked goroutines": each
// leaked lookup keeps its goroutine's stack, at least the starting size
// (2 KiB here), until the process ends, and whatever the goroutine
// references.
func TestLeakedGoroutinesKeepTheirStacks(t *testing.T) {
	const n = 500
	s, url := serve(t, Config{Goroutines: GoroutineLeak, Timeout: 5 * time.Millisecond})
	before, _ := stackInUse()
	_, err := Drive(t.Context(), &http.Client{Timeout: 30 * time.Second}, url, Load{Requests: n, Slow: n, Concurrency: 50})
	require.NoError(t, err)
	require.Equal(t, n, s.Leaked())
	after, starting := stackInUse()
	grew := int64(after) - int64(before)
	t.Logf("stack spans in use grew by %d KiB for %d leaked goroutines (a stack starts at %d B)", grew>>10, n, starting)
	assert.GreaterOrEqual(t, grew, int64(n*starting*9/10), "a starting stack or more per leaked goroutine")
}
