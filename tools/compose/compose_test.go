// Package compose checks docker-compose.yml without a Docker engine: it parses, it
// validates with compose-go (the loader Docker Compose itself uses), and it agrees
// with scripts/stack and the defaults in internal/stack.
package compose

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/tools/internal/repo"
	"gopkg.in/yaml.v3"
)

// composeFile is the subset of docker-compose.yml these tests read.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Ports       []string          `yaml:"ports"`
		NetworkMode string            `yaml:"network_mode"`
		Environment map[string]string `yaml:"environment"`
		Command     any               `yaml:"command"`
		Restart     string            `yaml:"restart"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repo.Root(t), "docker-compose.yml"))
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(raw, &c), "docker-compose.yml does not parse")
	return c
}

// publishedPorts maps each host port published on 127.0.0.1 to the service that
// publishes it (a service sharing another's network namespace is reached through it).
func publishedPorts(t *testing.T, c composeFile) map[int]string {
	t.Helper()
	out := map[int]string{}
	for name, svc := range c.Services {
		for _, p := range svc.Ports {
			parts := strings.Split(p, ":")
			if !assert.Len(t, parts, 3, "%s: port %q must be published as 127.0.0.1:HOST:CONTAINER", name, p) ||
				!assert.Equal(t, "127.0.0.1", parts[0], "%s: port %q must be published on 127.0.0.1", name, p) {
				continue
			}
			lo, hi := portRange(t, parts[1])
			clo, chi := portRange(t, parts[2])
			assert.Equal(t, [2]int{lo, hi}, [2]int{clo, chi},
				"%s: port %q maps to a different container port; clients and announcements need them equal", name, p)
			for port := lo; port <= hi; port++ {
				out[port] = name
			}
		}
	}
	return out
}

func portRange(t *testing.T, s string) (int, int) {
	t.Helper()
	lo, hi, found := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	require.NoError(t, err, "bad port %q", s)
	if !found {
		return a, a
	}
	b, err := strconv.Atoi(hi)
	require.NoError(t, err, "bad port range %q", s)
	return a, b
}

// TestComposeDeclaresEveryServiceAndPort keeps docker-compose.yml, the defaults in
// internal/stack and scripts/stack from drifting apart: every default address must be
// a port that Compose publishes, and every service scripts/stack runs must exist in
// Compose under the same name with the same port.
func TestComposeDeclaresEveryServiceAndPort(t *testing.T) {
	// The defaults are the subject: a shell set up for a private stack (its
	// addresses and STACK_PORT_OFFSET exported, as the README shows) must not
	// stand in for them.
	for _, name := range []string{stack.EnvRedis, stack.EnvRedlock, stack.EnvRedisCluster, stack.EnvEtcd,
		stack.EnvKafka, stack.EnvPostgres, stack.EnvTemporal, "STACK_PORT_OFFSET"} {
		t.Setenv(name, "")
	}
	c := loadCompose(t)
	published := publishedPorts(t, c)

	for _, svc := range stack.All {
		addrs, err := stack.Addrs(svc)
		require.NoError(t, err)
		for _, a := range addrs {
			_, p, err := net.SplitHostPort(a)
			require.NoError(t, err, svc)
			port, _ := strconv.Atoi(p)
			assert.Contains(t, published, port, "%s: default port %d is not published by docker-compose.yml", svc, port)
		}
	}

	out, err := exec.Command(filepath.Join(repo.Root(t), "scripts", "stack"), "ports").Output()
	require.NoError(t, err, "scripts/stack ports")
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		name, p, _ := strings.Cut(sc.Text(), " ")
		port, _ := strconv.Atoi(p)
		n++
		svc, ok := c.Services[name]
		if !assert.True(t, ok, "scripts/stack runs %q but docker-compose.yml has no such service", name) {
			continue
		}
		assert.True(t, svc.Healthcheck != nil && len(svc.Healthcheck.Test) > 0,
			"%s: no healthcheck in docker-compose.yml (`docker compose up --wait` needs one)", name)
		via := name
		if rest, ok := strings.CutPrefix(svc.NetworkMode, "service:"); ok {
			via = rest
		}
		assert.Equal(t, via, published[port], "%s: scripts/stack uses port %d; docker-compose.yml publishes it from another service", name, port)
	}
	assert.Equal(t, 11, n, "services listed by scripts/stack ports")
}

func TestComposeServiceSettings(t *testing.T) {
	c := loadCompose(t)

	pg := c.Services["postgres"]
	for _, k := range []string{"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"} {
		assert.Equal(t, "masterclass", pg.Environment[k], "postgres %s must match DATABASE_URL's default", k)
	}
	cmd, _ := pg.Command.([]any)
	assert.Contains(t, cmd, any("wal_level=logical"), "postgres: command must set wal_level=logical (outbox CDC)")

	k := c.Services["kafka"].Environment
	assert.Equal(t, "PLAINTEXT://localhost:9092", k["KAFKA_ADVERTISED_LISTENERS"], "kafka must advertise a host-reachable address")
	assert.Equal(t, "false", k["KAFKA_AUTO_CREATE_TOPICS_ENABLE"], "kafka: topic auto-creation must be off (tests create their topics)")
	assert.Contains(t, k["KAFKA_PROCESS_ROLES"], "controller", "kafka must run in KRaft mode (broker,controller)")

	// Same versions as the native stack (Debian's Redis 7, Kafka from deploy/kafka/pom.xml).
	pom, err := os.ReadFile(filepath.Join(repo.Root(t), "deploy", "kafka", "pom.xml"))
	require.NoError(t, err)
	_, v, _ := strings.Cut(c.Services["kafka"].Image, ":")
	assert.Contains(t, string(pom), "<kafka.version>"+v+"</kafka.version>", "kafka image and deploy/kafka/pom.xml disagree on the version")
	for _, name := range []string{"redis", "redlock-1", "redlock-2", "redlock-3", "redis-cluster-1"} {
		assert.True(t, strings.HasPrefix(c.Services[name].Image, "redis:7"), "%s: image %q, want redis:7.x like the native stack", name, c.Services[name].Image)
	}

	// Cluster nodes must announce 127.0.0.1 so MOVED redirects work from the host.
	node, _ := c.Services["redis-cluster-1"].Command.([]any)
	if assert.NotEmpty(t, node, "redis-cluster-1 command") {
		assert.Contains(t, node[len(node)-1], "--cluster-announce-ip 127.0.0.1", "redis-cluster nodes must announce 127.0.0.1")
	}
	init, ok := c.Services["redis-cluster-init"]
	assert.True(t, ok && init.Restart == "no", `redis-cluster-init must exist as a one-shot job (restart: "no")`)
}

// TestComposeConfigValid loads the file with compose-go, the loader Docker Compose
// itself uses: schema validation, interpolation and consistency checks (network_mode
// and depends_on must name real services) run here without a Docker engine.
func TestComposeConfigValid(t *testing.T) {
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(repo.Root(t), "docker-compose.yml")},
		cli.WithConsistency(true), cli.WithResolvedPaths(true),
	)
	require.NoError(t, err)
	p, err := opts.LoadProject(t.Context())
	require.NoError(t, err, "docker-compose.yml is not a valid Compose file")
	assert.Equal(t, "sysdesign-masterclass", p.Name)
	assert.Len(t, p.Services, 12, "11 long-running services + redis-cluster-init")
	for _, port := range p.Services["redis-cluster-1"].Ports {
		assert.Equal(t, "127.0.0.1", port.HostIP, "redis-cluster-1 publishes %v", port)
	}
	assert.Len(t, p.Services["redis-cluster-init"].DependsOn, 3, "redis-cluster-init must wait for the three cluster nodes")
}

// TestComposeCDCProfile: the cdc profile (part 8) adds Kafka Connect with
// Debezium, in Kafka's network namespace (the broker advertises localhost),
// and its REST port is published on 127.0.0.1; without the profile it is off.
func TestComposeCDCProfile(t *testing.T) {
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(repo.Root(t), "docker-compose.yml")},
		cli.WithConsistency(true), cli.WithResolvedPaths(true), cli.WithProfiles([]string{"cdc"}),
	)
	require.NoError(t, err)
	p, err := opts.LoadProject(t.Context())
	require.NoError(t, err)
	connect, ok := p.Services["kafka-connect"]
	require.True(t, ok, "kafka-connect in profile cdc")
	assert.Equal(t, "service:kafka", connect.NetworkMode)
	assert.True(t, strings.HasPrefix(connect.Image, "quay.io/debezium/connect:2."), "Debezium 2.x (topic.prefix): %s", connect.Image)
	published := publishedPorts(t, loadCompose(t))
	assert.Equal(t, "kafka", published[8083], "Connect's REST port, published through kafka's namespace")
	raw, err := os.ReadFile(filepath.Join(repo.Root(t), "deploy", "debezium", "outbox-connector.json"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"topic.prefix"`)
	assert.NotContains(t, string(raw), "database.server.name", "removed in Debezium 2.0")
}
