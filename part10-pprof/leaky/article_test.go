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

// stacks collects, then returns the bytes of goroutine stack the collection
// scanned (the used part of every live goroutine's stack) and the size a new
// goroutine's stack starts at. Unlike the stack spans in use, the scanned
// bytes do not depend on which freed stacks the runtime kept for reuse.
func stacks() (scanned, starting uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/stack:bytes"}, {Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// "Memory grows proportionally to the stack size of leaked goroutines": each
// leaked lookup keeps its goroutine, with a stack of at least the starting
// size, until the process ends, and every collection scans the part in use.
// The scanned bytes grow with the number of leaked goroutines.
func TestLeakedGoroutinesKeepTheirStacks(t *testing.T) {
	const n = 500
	slow, open := held()
	defer open()
	s, url := serve(t, Config{Goroutines: GoroutineLeak, Timeout: time.Millisecond, Backend: slow})
	c := &http.Client{Timeout: 30 * time.Second}
	_, err := Drive(t.Context(), c, url, Load{Requests: 1, Slow: 0}) // the connection's goroutines, before the baseline
	require.NoError(t, err)
	l0 := s.Leaked() // 1 if the fast request, too, took over the millisecond
	before, _ := stacks()
	_, err = Drive(t.Context(), c, url, Load{Requests: n, Slow: n, Concurrency: 1})
	require.NoError(t, err)
	require.Equal(t, n, s.Leaked()-l0)
	after, starting := stacks()
	grew := int64(after) - int64(before)
	t.Logf("%d leaked lookups: the stack a collection scans grew by %d KiB, %d B per leaked goroutine; each stack is at least %d B", n, grew>>10, grew/n, starting)
	assert.GreaterOrEqual(t, grew, int64(n*256), "every leaked goroutine's stack in use is scanned by every collection")
}
