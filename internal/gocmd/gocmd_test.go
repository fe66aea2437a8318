package gocmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A copy of a testdata module builds and runs with an empty module cache and
// the module proxy off: what a fresh CI machine has.
func TestModuleRunsOffline(t *testing.T) {
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOPROXY", "off")
	dir := Module(t, filepath.Join("testdata", "tiny"), "example.com/tiny")
	assert.FileExists(t, filepath.Join(dir, "sub", "sub.go"), "nested files are copied")
	out, err := Run(t, dir, "run", ".")
	require.NoError(t, err, out)
	assert.Equal(t, "42", strings.TrimSpace(out))
}

// The go command in the copy runs with none of the caller's GOFLAGS, from the
// environment or from the go env file (go env -w GOFLAGS=…): a -mod=vendor or
// -tags there would change what it reports. (GOFLAGS= alone left the file's
// value in force: the go command reads the file for any variable that is
// empty in the environment.) Its build cache stays the caller's, even one
// named only in the go env file, which GOENV=off would otherwise drop.
func TestRunIgnoresTheCallersGOFLAGS(t *testing.T) {
	cache := t.TempDir() // not the default: only the go env file names it
	env := filepath.Join(t.TempDir(), "env")
	require.NoError(t, os.WriteFile(env, []byte("GOFLAGS=-tags=fromgoenv\nGOCACHE="+cache+"\n"), 0o644))
	t.Setenv("GOENV", env)
	t.Setenv("GOFLAGS", "-tags=fromenvironment")
	t.Setenv("GOCACHE", "")
	dir := Module(t, filepath.Join("testdata", "tiny"), "example.com/tiny")
	out, err := Run(t, dir, "env", "GOFLAGS", "GOWORK", "GOTOOLCHAIN", "GOCACHE")
	require.NoError(t, err, out)
	assert.Equal(t, []string{"", "off", "local", cache}, strings.Split(strings.TrimRight(out, "\n"), "\n"),
		"GOFLAGS, GOWORK, GOTOOLCHAIN, and the caller's build cache, even when only its go env file names it")
}
