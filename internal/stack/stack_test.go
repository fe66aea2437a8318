package stack

import (
	"net"
	"slices"
	"testing"
	"time"
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
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Addrs(%s) = %v, %v; want %v", svc, got, err, want)
		}
	}
	if _, err := Addrs("nope"); err == nil {
		t.Error("unknown service must be an error")
	}
	t.Setenv(EnvPostgres, "host=localhost user=x")
	if _, err := Addrs(Postgres); err == nil {
		t.Error("a keyword/value DSN has no host to probe and must be reported, not guessed")
	}
}

func TestReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	t.Setenv(EnvRedis, addr)
	if err := Reachable(Redis, time.Second); err != nil {
		t.Fatalf("listener at %s not reachable: %v", addr, err)
	}
	_ = ln.Close()
	if err := Reachable(Redis, time.Second); err == nil {
		t.Fatalf("closed listener at %s reported reachable", addr)
	}
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
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	_ = ln.Close()
	t.Setenv(EnvKafka, dead)

	t.Setenv("STACK_REQUIRED", "")
	f := &fakeTB{}
	Require(f, Kafka)
	if !f.skipped || f.failed {
		t.Errorf("without STACK_REQUIRED: skipped=%v failed=%v, want skip", f.skipped, f.failed)
	}

	t.Setenv("STACK_REQUIRED", "1")
	f = &fakeTB{}
	Require(f, Kafka)
	if !f.failed || f.skipped {
		t.Errorf("with STACK_REQUIRED=1: skipped=%v failed=%v, want fail", f.skipped, f.failed)
	}
}
