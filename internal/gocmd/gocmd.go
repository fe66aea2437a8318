// Package gocmd runs the go command on a throwaway module copied from a
// testdata folder, so that a chapter can show what go build, go vet or go test
// say about a construct of the article (a snippet that does not compile, a
// benchmark with the wrong signature) without that construct ever being part of
// the repository's own build.
package gocmd

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Module copies every file under src into a new temporary directory, adds a
// go.mod declaring module path, and returns the directory.
func Module(t testing.TB, src, path string) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+path+"\n\ngo 1.24\n"), 0o644)
	}
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dir
}

// Run runs the go command with args in dir, with the toolchain in use and no
// GOFLAGS or workspace of the caller, and returns its combined output and how
// it ended. GOENV=off keeps the caller's go env file (go env -w) out too: the
// go command falls back to it for any variable empty in the environment, so
// GOFLAGS= alone would leave a GOFLAGS set there in force. The caller's build
// cache is kept (GOCACHE as the caller's go command reports it, wherever it
// was set), so the copy compiles only what the caller's builds have not.
func Run(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed: %v", err)
	}
	cache, err := buildCache(goBin)
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOENV=off", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local", "GO111MODULE=on", "GOCACHE="+cache)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// buildCache is the caller's GOCACHE, from the environment or the go env file.
func buildCache(goBin string) (string, error) {
	if c := os.Getenv("GOCACHE"); c != "" {
		return c, nil
	}
	out, err := exec.Command(goBin, "env", "GOCACHE").Output()
	if err != nil {
		return "", err
	}
	c := strings.TrimSpace(string(out))
	if c == "" || c == "off" {
		return "", fmt.Errorf("no build cache (GOCACHE=%q)", c)
	}
	return c, nil
}
