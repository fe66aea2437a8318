package stack

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddrsFromEnvAndDefaults(t *testing.T) {
	t.Setenv(EnvRedlock, " a:1, b:2 ,,c:3 ")
	t.Setenv(EnvEtcd, "http://e1:2379,e2:2379")
	t.Setenv(EnvPostgres, "postgres://u:p@db.internal/x?sslmode=disable")
	t.Setenv(EnvRedis, "")
	t.Setenv(EnvKafka, "") // the shell may set it (a private stack's KAFKA_BROKERS): the default is asked for

	cases := map[Service][]string{
		Redlock:  {"a:1", "b:2", "c:3"},
		Etcd:     {"e1:2379", "e2:2379"},
		Postgres: {"db.internal:5432"},
		Redis:    {DefaultRedis},
		Kafka:    {DefaultKafka},
	}
	for svc, want := range cases {
		got, err := Addrs(svc)
		require.NoError(t, err, svc)
		assert.Equal(t, want, got, svc)
	}
	_, err := Addrs("nope")
	assert.Error(t, err, "unknown service")
	t.Setenv(EnvPostgres, "host=localhost user=x")
	_, err = Addrs(Postgres)
	assert.Error(t, err, "a keyword/value DSN has no host to probe and must be reported, not guessed")
}

func TestReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	t.Setenv(EnvRedis, addr)
	require.NoError(t, Reachable(Redis, time.Second), "listener at %s", addr)
	require.NoError(t, ln.Close())
	assert.Error(t, Reachable(Redis, time.Second), "closed listener at %s reported reachable", addr)
}

// fakeTB records whether Require skipped or failed.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skip(...any)           { f.skipped = true }
func (f *fakeTB) Fatal(...any)          { f.failed = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }

func TestRequireSkipsLocallyAndFailsWhenRequired(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	t.Setenv(EnvKafka, dead)

	t.Setenv("STACK_REQUIRED", "")
	f := &fakeTB{}
	Require(f, Kafka)
	assert.Equal(t, [2]bool{true, false}, [2]bool{f.skipped, f.failed}, "without STACK_REQUIRED: want skipped, not failed")

	t.Setenv("STACK_REQUIRED", "1")
	f = &fakeTB{}
	Require(f, Kafka)
	assert.Equal(t, [2]bool{false, true}, [2]bool{f.skipped, f.failed}, "with STACK_REQUIRED=1: want failed, not skipped")
}

// TestEtcdVersionMatchesCompose keeps the etcd release that scripts/stack builds and
// the image docker-compose.yml runs on one version.
func TestEtcdVersionMatchesCompose(t *testing.T) {
	root, err := repoRoot()
	require.NoError(t, err)
	script, err := os.ReadFile(filepath.Join(root, "scripts", "stack"))
	require.NoError(t, err)
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)

	native := regexp.MustCompile(`(?m)^ETCD_VERSION=(\S+)`).FindSubmatch(script)
	require.NotNil(t, native, "scripts/stack sets ETCD_VERSION")
	image := regexp.MustCompile(`(?m)^\s+image: gcr\.io/etcd-development/etcd:v(\S+)$`).FindSubmatch(compose)
	require.NotNil(t, image, "docker-compose.yml runs gcr.io/etcd-development/etcd")
	assert.Equal(t, string(native[1]), string(image[1]), "etcd: scripts/stack and docker-compose.yml disagree")
}

// script runs scripts/stack with env on a state folder of its own.
func script(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("scripts/stack runs on Linux (elsewhere: docker compose)")
	}
	root, err := repoRoot()
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(root, "scripts", "stack"), args...)
	cmd.Env = append(append(os.Environ(), "STACK_DIR="+t.TempDir()), env...)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err)
	return string(out), 0
}

// TestPortOffset: STACK_PORT_OFFSET moves every port, so a test can run a private
// stack beside the shared one.
func TestPortOffset(t *testing.T) {
	ports := func(offset string) map[string]int {
		out, code := script(t, []string{"STACK_PORT_OFFSET=" + offset}, "ports")
		require.Equal(t, 0, code, out)
		m := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			name, p, _ := strings.Cut(line, " ")
			m[name], _ = strconv.Atoi(p)
		}
		return m
	}
	base, moved := ports("0"), ports("10000")
	require.Len(t, base, 11)
	for name, p := range base {
		assert.Equal(t, p+10000, moved[name], name)
	}
}

// TestScriptRefusesBadArguments: a typo changes nothing and says so.
func TestScriptRefusesBadArguments(t *testing.T) {
	cases := []struct {
		env  []string
		args []string
		code int
	}{
		{nil, []string{"status", "nosuch"}, 2},
		{nil, []string{"kill", "redis", "nosuch"}, 2},
		{nil, []string{"frobnicate"}, 2},
		{nil, []string{"kill"}, 2},
		{[]string{"STACK_PORT_OFFSET=-1"}, []string{"ports"}, 1},
		{[]string{"STACK_PORT_OFFSET=x"}, []string{"ports"}, 1},
		{[]string{"STACK_PORT_OFFSET=40001"}, []string{"ports"}, 1},
	}
	for _, tc := range cases {
		out, code := script(t, tc.env, tc.args...)
		assert.Equal(t, tc.code, code, "%v %v: %s", tc.env, tc.args, out)
		assert.NotContains(t, out, "127.0.0.1:", "%v %v printed a status", tc.env, tc.args)
	}
}
