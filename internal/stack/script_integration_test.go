//go:build integration

package stack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests check scripts/stack itself: each runs a private stack (its own state
// folder under t.TempDir and its own ports, via STACK_DIR and STACK_PORT_OFFSET) beside
// whatever stack the machine runs, so they never touch the shared services.

// basePorts are scripts/stack's ports before the offset (the services these tests use).
var basePorts = map[string]int{"redis": 6379, "redlock-1": 6380, "redlock-2": 6381, "redlock-3": 6382, "postgres": 5432}

type privateStack struct {
	t      *testing.T
	script string
	dir    string
	offset int
}

// newPrivateStack returns a stack whose ports for svcs are free. Offsets stay below
// 24,000 so that every port is under the kernel's ephemeral range (32768 and up).
func newPrivateStack(t *testing.T, svcs ...string) *privateStack {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("scripts/stack runs on Linux (elsewhere: docker compose)")
	}
	missing := func(msg string) {
		// `make up` runs Compose when a Docker engine answers: scripts/stack is then not
		// this machine's stack, and its binaries need not be installed
		if exec.Command("docker", "info").Run() == nil {
			t.Skip(msg + "; the stack runs on Docker Compose here")
		}
		SkipOrFail(t, msg)
	}
	for _, bin := range []string{"redis-server", "redis-cli", "psql", "ss", "flock", "setsid"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing(bin + " not installed (scripts/stack install)")
		}
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(m) == 0 {
		if _, err := exec.LookPath("pg_ctl"); err != nil {
			missing("PostgreSQL not installed (scripts/stack install)")
		}
	}
	root, err := repoRoot()
	require.NoError(t, err)
	dir := t.TempDir()
	// when run as root, the postgres user must reach the data folder inside it
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	s := &privateStack{t: t, script: filepath.Join(root, "scripts", "stack"), dir: dir}
	for try := 0; ; try++ {
		require.Less(t, try, 50, "no free set of ports found")
		s.offset = 10000 + 100*rand.IntN(140)
		if s.portsFree(svcs) {
			break
		}
	}
	t.Cleanup(func() {
		if out, err := s.run("down"); err != nil {
			t.Logf("scripts/stack down: %v\n%s", err, out)
		}
	})
	return s
}

func (s *privateStack) port(svc string) int { return basePorts[svc] + s.offset }
func (s *privateStack) addr(svc string) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port(svc)))
}

func (s *privateStack) portsFree(svcs []string) bool {
	for _, svc := range svcs {
		ln, err := net.Listen("tcp", s.addr(svc))
		if err != nil {
			return false
		}
		_ = ln.Close()
	}
	return true
}

func (s *privateStack) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.script, args...)
	cmd.Env = append(os.Environ(), "STACK_DIR="+s.dir, "STACK_PORT_OFFSET="+strconv.Itoa(s.offset),
		"STACK_HEALTH_TIMEOUT=60")
	return cmd
}

// run runs scripts/stack with a deadline generous for a loaded machine.
func (s *privateStack) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := s.command(ctx, args...).CombinedOutput()
	return string(out), err
}

func (s *privateStack) mustRun(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	require.NoError(s.t, err, "scripts/stack %s:\n%s", strings.Join(args, " "), out)
	return out
}

func (s *privateStack) status(svc string) string {
	s.t.Helper()
	return strings.Join(strings.Fields(s.mustRun("status", svc)), " ")
}

var trackedLine = regexp.MustCompile(`^\S+ \S+ healthy \(pid (\d+)\)$`)

// requireTracked asserts the status line says healthy and names a pid, the way
// scripts/stack reports only a process it started.
func (s *privateStack) requireTracked(svc string) int {
	s.t.Helper()
	st := s.status(svc)
	m := trackedLine.FindStringSubmatch(st)
	require.NotNil(s.t, m, "%s: want healthy and tracked: %s", svc, st)
	pid, err := strconv.Atoi(m[1])
	require.NoError(s.t, err, st)
	return pid
}

func (s *privateStack) requirePortClosed(svc string) {
	s.t.Helper()
	c, err := net.DialTimeout("tcp", s.addr(svc), time.Second)
	if err == nil {
		_ = c.Close()
	}
	require.Error(s.t, err, "%s: port %d still accepts connections", svc, s.port(svc))
}

// requireDownStopsAll asserts every service in svcs runs tracked, and that down
// then frees every one of their ports.
func (s *privateStack) requireDownStopsAll(svcs []string) {
	s.t.Helper()
	for _, svc := range svcs {
		s.requireTracked(svc)
	}
	s.mustRun("down")
	for _, svc := range svcs {
		s.requirePortClosed(svc)
	}
}

func (s *privateStack) postgresURL() string {
	return fmt.Sprintf("postgres://masterclass:masterclass@127.0.0.1:%d/masterclass?sslmode=disable", s.port("postgres"))
}

// procState is the state letter of /proc/PID/stat (S sleeping, T stopped, Z zombie),
// or "" when the process is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// startForeign starts a process that has nothing to do with the stack, in its own
// session, and stops it at cleanup.
func startForeign(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

// TestStackNeverSignalsAReusedPid: after a crash, the pid in the service's pid file may
// belong to an unrelated process (pids wrap). scripts/stack must treat the service as
// stopped, refuse to pause or kill that process, and start the service again on up.
// The test puts the foreign process's pid where the dead service's pid was, keeping the
// rest of the file, which is what the file holds when the kernel reuses the pid.
func TestStackNeverSignalsAReusedPid(t *testing.T) {
	cases := []struct {
		svc     string
		pidFile func(s *privateStack) string
	}{
		{"redis", func(s *privateStack) string { return filepath.Join(s.dir, "redis", "pid") }},
		{"postgres", func(s *privateStack) string { return filepath.Join(s.dir, "postgres", "data", "postmaster.pid") }},
	}
	for _, tc := range cases {
		t.Run(tc.svc, func(t *testing.T) {
			s := newPrivateStack(t, tc.svc)
			s.mustRun("up", tc.svc)
			old := s.requireTracked(tc.svc)
			s.mustRun("kill", tc.svc) // a crash: the pid file stays behind

			foreign := startForeign(t)
			f := tc.pidFile(s)
			b, err := os.ReadFile(f)
			require.NoError(t, err, "the killed service's pid file")
			forged := strings.Replace(string(b), strconv.Itoa(old), strconv.Itoa(foreign), 1)
			require.NotEqual(t, string(b), forged)
			require.NoError(t, os.WriteFile(f, []byte(forged), 0o644))

			st := s.status(tc.svc)
			assert.Contains(t, st, "stopped", "a reused pid is not the service")
			assert.NotContains(t, st, "(pid ")
			for _, verb := range []string{"pause", "kill", "resume"} {
				out, err := s.run(verb, tc.svc)
				assert.Error(t, err, "%s must refuse a process it did not start:\n%s", verb, out)
				assert.Equal(t, "S", procState(foreign), "after %s: the foreign process must be untouched", verb)
			}

			s.mustRun("up", tc.svc)
			now := s.requireTracked(tc.svc)
			assert.NotEqual(t, foreign, now)
			s.mustRun("down")
			s.requirePortClosed(tc.svc)
			assert.Equal(t, "S", procState(foreign), "after up and down: the foreign process must be untouched")
		})
	}
}

// groupMembers lists the processes left in process group pgid ("pid command").
func groupMembers(pgid int) []string {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return nil
	}
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[end+1:]) // fields[2] is field 5, the process group
		if open > 0 && end > open && len(fields) > 2 && fields[2] == strconv.Itoa(pgid) {
			out = append(out, strings.TrimSpace(s[:open])+" "+s[open+1:end])
		}
	}
	return out
}

// TestStackSurvivesCtrlC: a Ctrl-C sends SIGINT to the terminal's foreground process
// group (e.g. during `make test`, which runs `make up` in it). The services must not be
// in that group; an up interrupted half-way must leave every service it started tracked.
func TestStackSurvivesCtrlC(t *testing.T) {
	svcs := []string{"redis", "redlock-1", "redlock-2", "redlock-3", "postgres"}

	t.Run("after up", func(t *testing.T) {
		s := newPrivateStack(t, svcs...)
		cmd := s.command(t.Context(), "up", "redis", "postgres")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the caller's group, as a shell makes one
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		pgid := cmd.Process.Pid

		assert.Empty(t, groupMembers(pgid), "a service runs in the caller's process group")
		_ = syscall.Kill(-pgid, syscall.SIGINT) // the Ctrl-C
		s.requireTracked("redis")
		s.requireTracked("postgres")
	})

	t.Run("during up", func(t *testing.T) {
		s := newPrivateStack(t, svcs...)
		cmd := s.command(t.Context(), append([]string{"up"}, svcs...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()

		// Ctrl-C as soon as the first service is recorded, while the others start
		deadline := time.Now().Add(time.Minute)
		for _, err := os.Stat(filepath.Join(s.dir, "redis", "pid")); err != nil; _, err = os.Stat(filepath.Join(s.dir, "redis", "pid")) {
			require.True(t, time.Now().Before(deadline), "redis was not started within a minute")
			time.Sleep(20 * time.Millisecond)
		}
		require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
		select {
		case err := <-done:
			t.Logf("interrupted up: %v", err)
		case <-time.After(time.Minute):
			require.Fail(t, "scripts/stack up did not stop within a minute of SIGINT")
		}
		// the script's own children got the SIGINT too (initdb's bootstrap postgres may
		// still be on its way out); a service would stay
		pgid := cmd.Process.Pid
		if left := groupMembers(pgid); len(left) > 0 {
			t.Logf("still in the caller's group as up exits: %v", left)
		}
		deadline = time.Now().Add(10 * time.Second)
		for len(groupMembers(pgid)) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		assert.Empty(t, groupMembers(pgid), "a process of the stack runs in the caller's process group")

		for _, svc := range svcs { // each one is tracked or not running: none is a stray
			assert.NotContains(t, s.status(svc), "external", "%s runs untracked after the interrupted up", svc)
		}
		s.mustRun(append([]string{"up"}, svcs...)...) // finishes what the interrupted up started
		s.requireDownStopsAll(svcs)
	})
}

// TestStackConcurrentUpsTrackEveryService: two runners at once (two `make test-partNN`)
// must not leave a server running whose pid file names the loser's dead process.
func TestStackConcurrentUpsTrackEveryService(t *testing.T) {
	svcs := []string{"redis", "redlock-1", "redlock-2", "redlock-3"}
	s := newPrivateStack(t, svcs...)
	results := make(chan error, 2)
	for range 2 {
		go func() {
			out, err := s.run("up", "redis", "redlock")
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, out)
			}
			results <- err
		}()
	}
	for range 2 {
		assert.NoError(t, <-results)
	}
	s.requireDownStopsAll(svcs)
}

// TestStackStopsAPausedPostgres: down and restart of a paused PostgreSQL resume it first
// and finish in seconds (pg_ctl used to wait 60 s on a stopped postmaster).
func TestStackStopsAPausedPostgres(t *testing.T) {
	for _, verb := range []string{"down", "restart"} {
		t.Run(verb, func(t *testing.T) {
			s := newPrivateStack(t, "postgres")
			s.mustRun("up", "postgres")
			// Each step has a bound of its own: one context shared by the
			// connect, the restart and the reconnect left a slow restart's
			// reconnect no time (a fresh-clone CI run on a busy machine).
			step := func() context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				t.Cleanup(cancel)
				return ctx
			}
			conn, err := pgx.Connect(step(), s.postgresURL()) // a backend of its own
			require.NoError(t, err)
			defer conn.Close(context.Background())

			s.mustRun("pause", "postgres")
			assert.Contains(t, s.status("postgres"), "paused")
			args := []string{verb}
			if verb == "restart" {
				args = append(args, "postgres")
			}
			// generous: it takes about a second; the bug took over 60 s
			quick, cancelQuick := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancelQuick()
			out, err := s.command(quick, args...).CombinedOutput()
			require.NoError(t, err, "scripts/stack %s of a paused postgres:\n%s", verb, out)

			if verb == "down" {
				s.requirePortClosed("postgres")
				assert.Contains(t, s.status("postgres"), "stopped")
				return
			}
			s.requireTracked("postgres")
			again, err := pgx.Connect(step(), s.postgresURL())
			require.NoError(t, err)
			defer again.Close(context.Background())
			var one int
			require.NoError(t, again.QueryRow(step(), "select 1").Scan(&one))
		})
	}
}

// TestStackKillLeavesNoProcessBehind: kill is a crash of the whole service, and
// a restart must find nothing of the old one. PostgreSQL is the hard case: when
// one of its processes dies, the postmaster kills the others and forks new ones
// (crash recovery), so a kill that signals a backend before the postmaster can
// leave a child forked meanwhile, outside any snapshot; it keeps the shared
// memory, and the next start fails with "pre-existing shared memory block is
// still in use" (seen once in a busy `make test`). Here a backend dies just
// before each kill, so every kill lands on a postmaster that is forking. Every
// PostgreSQL process runs in the data directory, so none may be left there.
func TestStackKillLeavesNoProcessBehind(t *testing.T) {
	s := newPrivateStack(t, "postgres")
	s.mustRun("up", "postgres")
	postmaster := s.requireTracked("postgres")
	dataDir, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", postmaster))
	require.NoError(t, err)
	inDataDir := func() []int {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && cwd == dataDir && procState(pid) != "Z" {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for round := range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		var conns []*pgx.Conn
		for range 20 { // many backends: a kill that goes through them one by one takes a while
			conn, err := pgx.Connect(ctx, s.postgresURL())
			require.NoError(t, err, "round %d", round)
			conns = append(conns, conn)
		}
		var backend int
		require.NoError(t, conns[0].QueryRow(ctx, "select pg_backend_pid()").Scan(&backend))
		require.NoError(t, syscall.Kill(backend, syscall.SIGKILL))
		s.mustRun("kill", "postgres")
		assert.Empty(t, inDataDir(), "round %d: PostgreSQL processes left after kill", round)
		for _, c := range conns {
			_ = c.Close(context.Background())
		}
		cancel()
		s.mustRun("restart", "postgres")
		s.requireTracked("postgres")
	}
}

// TestStackRestartWaitsForLeftoverPostgresProcesses: should processes of a dead
// postmaster still run in the data folder (they hold its shared memory until
// they notice it is gone), start waits for them instead of failing. A sleep
// started there stands in for one.
func TestStackRestartWaitsForLeftoverPostgresProcesses(t *testing.T) {
	s := newPrivateStack(t, "postgres")
	s.mustRun("up", "postgres")
	dataDir, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", s.requireTracked("postgres")))
	require.NoError(t, err)
	s.mustRun("kill", "postgres")
	leftover := exec.Command("sleep", "2")
	leftover.Dir = dataDir
	require.NoError(t, leftover.Start())
	exited := make(chan struct{})
	go func() { _ = leftover.Wait(); close(exited) }()

	s.mustRun("restart", "postgres")
	select {
	case <-exited:
	default:
		require.FailNow(t, "restart returned while a process still ran in the data folder")
	}
	s.requireTracked("postgres")
}

// TestStackPausesEveryProcess: pause stops every process of the service (PostgreSQL's
// backends are children that left the postmaster's session) and resume continues them.
func TestStackPausesEveryProcess(t *testing.T) {
	s := newPrivateStack(t, "postgres")
	s.mustRun("up", "postgres")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.postgresURL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var backend int
	require.NoError(t, conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&backend))

	s.mustRun("pause", "postgres")
	assert.Equal(t, "T", procState(backend), "the connection's backend must be stopped")
	s.mustRun("resume", "postgres")
	assert.NotEqual(t, "T", procState(backend), "the connection's backend must run again")
	var one int
	require.NoError(t, conn.QueryRow(ctx, "select 1").Scan(&one), "the connection survives pause and resume")
}

// TestStackNamesTheProcessHoldingAPort: a foreign listener on a service's port makes up
// fail at once, naming its pid, instead of waiting out the health timeout.
func TestStackNamesTheProcessHoldingAPort(t *testing.T) {
	s := newPrivateStack(t, "redis")
	ln, err := net.Listen("tcp", s.addr("redis")) // accepts, never answers
	require.NoError(t, err)
	defer ln.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // the health timeout is 60 s
	defer cancel()
	out, err := s.command(ctx, "up", "redis").CombinedOutput()
	require.Error(t, err, "%s", out)
	require.NoError(t, ctx.Err(), "up waited for the health timeout:\n%s", out)
	assert.Contains(t, string(out), fmt.Sprintf("held by pid %d (", os.Getpid()), "up must name the listener")
	assert.Contains(t, s.status("redis"), fmt.Sprintf("external: pid %d", os.Getpid()))
}
