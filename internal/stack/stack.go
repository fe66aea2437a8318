// Package stack knows where the project's services live and whether they answer.
//
// Addresses come from the environment variables listed in CONVENTIONS.md, with the
// defaults that docker-compose.yml and scripts/stack both publish on loopback. Tests
// call Require; demos call Reachable to decide between the real service and an
// in-process stand-in.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Service names one service of the stack. The names match scripts/stack and the
// service names in docker-compose.yml (a group such as Redlock covers several).
type Service string

// The services of the stack.
const (
	Redis        Service = "redis"         // single Redis node
	Redlock      Service = "redlock"       // three independent Redis masters
	RedisCluster Service = "redis-cluster" // three-master Redis Cluster
	Etcd         Service = "etcd"
	Kafka        Service = "kafka"
	Postgres     Service = "postgres"
	Temporal     Service = "temporal"
)

// All lists every service, in the order scripts/stack starts them.
var All = []Service{Redis, Redlock, RedisCluster, Etcd, Postgres, Kafka, Temporal}

// Env var names and their defaults (the ports docker-compose.yml publishes).
const (
	EnvRedis        = "REDIS_ADDR"
	EnvRedlock      = "REDLOCK_ADDRS"
	EnvRedisCluster = "REDIS_CLUSTER_ADDRS"
	EnvEtcd         = "ETCD_ENDPOINTS"
	EnvKafka        = "KAFKA_BROKERS"
	EnvPostgres     = "DATABASE_URL"
	EnvTemporal     = "TEMPORAL_ADDRESS"

	DefaultRedis        = "localhost:6379"
	DefaultRedlock      = "localhost:6380,localhost:6381,localhost:6382"
	DefaultRedisCluster = "localhost:7000,localhost:7001,localhost:7002"
	DefaultEtcd         = "localhost:2379"
	DefaultKafka        = "localhost:9092"
	DefaultPostgres     = "postgres://masterclass:masterclass@localhost:5432/masterclass?sslmode=disable"
	DefaultTemporal     = "localhost:7233"
)

// RedisAddr is the single Redis node's host:port.
func RedisAddr() string { return env(EnvRedis, DefaultRedis) }

// RedlockAddrs are the three independent Redis masters used by Redlock.
func RedlockAddrs() []string { return list(EnvRedlock, DefaultRedlock) }

// RedisClusterAddrs are the seed nodes of the Redis Cluster.
func RedisClusterAddrs() []string { return list(EnvRedisCluster, DefaultRedisCluster) }

// EtcdEndpoints are etcd client endpoints (host:port, as clientv3 accepts them).
func EtcdEndpoints() []string { return list(EnvEtcd, DefaultEtcd) }

// KafkaBrokers are the Kafka bootstrap brokers.
func KafkaBrokers() []string { return list(EnvKafka, DefaultKafka) }

// DatabaseURL is the PostgreSQL connection string (pgx accepts it as is).
func DatabaseURL() string { return env(EnvPostgres, DefaultPostgres) }

// TemporalAddress is the Temporal frontend's host:port.
func TemporalAddress() string { return env(EnvTemporal, DefaultTemporal) }

// Addrs returns every host:port that must answer for svc to count as reachable.
func Addrs(svc Service) ([]string, error) {
	switch svc {
	case Redis:
		return []string{RedisAddr()}, nil
	case Redlock:
		return RedlockAddrs(), nil
	case RedisCluster:
		return RedisClusterAddrs(), nil
	case Etcd:
		return stripSchemes(EtcdEndpoints()), nil
	case Kafka:
		return KafkaBrokers(), nil
	case Postgres:
		return postgresHostPort(DatabaseURL())
	case Temporal:
		return []string{TemporalAddress()}, nil
	}
	return nil, fmt.Errorf("stack: unknown service %q", svc)
}

// Reachable dials every address of svc over TCP and reports the first that does
// not answer within timeout. It proves a listener is there, not that the service
// is healthy: scripts/stack up waits for health before it returns.
func Reachable(svc Service, timeout time.Duration) error {
	addrs, err := Addrs(svc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return fmt.Errorf("%s at %s: %w", svc, a, err)
		}
		_ = c.Close()
	}
	return nil
}

// Required reports whether STACK_REQUIRED=1, as set by `make test` and CI: then a
// missing service fails a test instead of skipping it, so a green run means every
// integration test really ran.
func Required() bool { return os.Getenv("STACK_REQUIRED") == "1" }

// Require skips t (or fails it when Required) unless every svc answers.
func Require(t testing.TB, svcs ...Service) {
	t.Helper()
	for _, svc := range svcs {
		if err := Reachable(svc, 2*time.Second); err != nil {
			SkipOrFail(t, fmt.Sprintf("stack service %s unreachable (%v); start it with `make up`", svc, err))
			return
		}
	}
}

// SkipOrFail is the rule for anything an integration test needs but cannot have
// (a service, a binary such as redis-server): skip with msg locally, fail under
// STACK_REQUIRED=1 so a green `make test` means every integration test ran.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg + " [STACK_REQUIRED=1]")
		return
	}
	t.Skip(msg)
}

func env(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

func list(name, def string) []string {
	var out []string
	for _, p := range strings.Split(env(name, def), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func stripSchemes(endpoints []string) []string {
	out := make([]string, len(endpoints))
	for i, e := range endpoints {
		if u, err := url.Parse(e); err == nil && u.Host != "" {
			e = u.Host
		}
		out[i] = e
	}
	return out
}

func postgresHostPort(dsn string) ([]string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return nil, errors.New("stack: DATABASE_URL must be a postgres:// URL with a host")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	return []string{net.JoinHostPort(host, port)}, nil
}
