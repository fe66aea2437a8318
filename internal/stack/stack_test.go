package stack

import (
	"net"
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
