package users

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/gocmd"
)

// TestArticleLayoutAsWritten builds testdata/articlelayout, a module with the
// shape of the article's three Go snippets in this project's names (the
// domain package holding the entity, the port and the service with an
// unexported dependency; an adapter with an unexported handle; a main that
// sets both fields; a test mock with the lookup only), plus a domain file that
// imports an outer package. What the go command says about it:
//
//   - main does not compile: it cannot set the unexported fields (erratum 2);
//   - the mock is not the port: go vet type-checks the test (erratum 3);
//   - the domain importing the handler builds: internal/ does not enforce the
//     direction of dependencies inside a module (erratum 6).
func TestArticleLayoutAsWritten(t *testing.T) {
	dir := gocmd.Module(t, filepath.Join("testdata", "articlelayout"), "example.com/layout")
	run := func(args ...string) (string, error) { return gocmd.Run(t, dir, args...) }

	out, err := run("build", "./cmd/api")
	t.Logf("go build ./cmd/api:\n%s", out)
	require.Error(t, err)
	assert.Contains(t, out, "unknown field Conn in struct literal of type repository.SQLProfileStore")
	assert.Contains(t, out, "unknown field Store in struct literal of type domain.ProfileService, but does have unexported store")

	out, err = run("vet", "./internal/domain")
	t.Logf("go vet ./internal/domain:\n%s", out)
	require.Error(t, err)
	assert.Contains(t, out, "fakeStore does not implement ProfileStore (missing method Put)")

	out, err = run("build", "./internal/...")
	assert.NoError(t, err, "the domain importing the handler must build:\n%s", out)
}
