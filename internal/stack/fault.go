package stack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Fault tests break one service on purpose (a lock master dies, a broker pauses like a
// long GC) and assert that nothing was lost or done twice. These helpers do it on
// whichever stack is running: the native one through scripts/stack, Docker Compose
// through `docker compose`. Every break registers a cleanup that brings the service
// back, so a failing test does not leave the stack broken for the next one.
//
// Names are scripts/stack's and docker-compose.yml's: redis, redlock-1..3,
// redis-cluster-1..3, etcd, postgres, kafka, temporal.
//
// go test runs packages in parallel, and the stack is shared: name every test that
// breaks a service TestFault…. `make test` runs all other tests first, then the
// TestFault tests one package at a time (-p 1), so a killed master never fails
// another package's test.

// Kill stops name abruptly (SIGKILL to every process of the service: no shutdown
// hooks, no flush), as a crash would, and restarts it at cleanup.
func Kill(t testing.TB, name string) {
	t.Helper()
	fault(t, name, "kill")
	t.Cleanup(func() {
		if err := run(name, "up"); err != nil { // no-op if the test already restarted it
			t.Logf("stack: bring %s back after the test: %v", name, err)
		}
	})
}

// Pause freezes name (SIGSTOP to every process of the service, PostgreSQL's backends
// included; Compose freezes the container): its port still accepts TCP connections and
// connections opened before stay open, but nothing answers, the way a process stalled
// in a long GC pause or swapped out looks to its clients. It is resumed at cleanup.
func Pause(t testing.TB, name string) {
	t.Helper()
	fault(t, name, "pause")
	t.Cleanup(func() {
		if err := run(name, "resume"); err != nil {
			t.Logf("stack: resume %s: %v", name, err)
		}
	})
}

// Resume continues a paused service.
func Resume(t testing.TB, name string) {
	t.Helper()
	fault(t, name, "resume")
}

// Restart starts name again (after Kill, or to bounce a healthy or paused one) and
// waits until it is healthy.
func Restart(t testing.TB, name string) {
	t.Helper()
	fault(t, name, "restart")
}

func fault(t testing.TB, name, verb string) {
	t.Helper()
	if err := run(name, verb); err != nil {
		SkipOrFail(t, fmt.Sprintf("stack: %s %s: %v", verb, name, err))
	}
}

// run applies verb to name on the stack that runs it.
func run(name, verb string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	script := filepath.Join(root, "scripts", "stack")
	// scripts/stack runs it if it shows a pid, or if it is down but has state in
	// scripts/stack's folder (killed by an earlier step of this test).
	status, _ := exec.Command(script, "status", name).Output()
	state := os.Getenv("STACK_DIR")
	if state == "" {
		state = filepath.Join(root, ".stack")
	}
	_, statErr := os.Stat(filepath.Join(state, name))
	if strings.Contains(string(status), "(pid ") || (strings.Contains(string(status), "stopped") && statErr == nil) {
		return command(root, script, verb, name)
	}
	compose := map[string][]string{
		"kill":    {"kill", name},
		"pause":   {"pause", name},
		"resume":  {"unpause", name},
		"restart": {"up", "-d", "--wait", name},
		"up":      {"up", "-d", "--wait", name},
	}[verb]
	if err := exec.Command("docker", "info").Run(); err == nil {
		return command(root, "docker", append([]string{"compose"}, compose...)...)
	}
	return fmt.Errorf("%s is not managed by scripts/stack here and no Docker engine answers", name)
}

func command(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// repoRoot walks up from the working directory (a package directory under go test)
// to the folder holding scripts/stack.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "stack")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/stack not found above the working directory")
		}
		dir = parent
	}
}
