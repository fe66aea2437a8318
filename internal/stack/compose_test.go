package stack

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
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

func rootDir(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(rootDir(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
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
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("%s: port %q must be published as 127.0.0.1:HOST:CONTAINER", name, p)
				continue
			}
			lo, hi := portRange(t, parts[1])
			clo, chi := portRange(t, parts[2])
			if lo != clo || hi != chi {
				t.Errorf("%s: port %q maps to a different container port; clients and announcements need them equal", name, p)
			}
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
	if err != nil {
		t.Fatalf("bad port %q", s)
	}
	if !found {
		return a, a
	}
	b, err := strconv.Atoi(hi)
	if err != nil {
		t.Fatalf("bad port range %q", s)
	}
	return a, b
}

// TestComposeDeclaresEveryServiceAndPort keeps docker-compose.yml, the defaults in this
// package and scripts/stack from drifting apart: every default address must be a
// port that Compose publishes, and every service scripts/stack runs must exist in
// Compose under the same name with the same port.
func TestComposeDeclaresEveryServiceAndPort(t *testing.T) {
	c := loadCompose(t)
	published := publishedPorts(t, c)

	for _, svc := range All {
		addrs, err := Addrs(svc)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			_, p, err := net.SplitHostPort(a)
			if err != nil {
				t.Fatalf("%s: %v", svc, err)
			}
			port, _ := strconv.Atoi(p)
			if _, ok := published[port]; !ok {
				t.Errorf("%s: default port %d is not published by docker-compose.yml", svc, port)
			}
		}
	}

	out, err := exec.Command(filepath.Join(rootDir(t), "scripts", "stack"), "ports").Output()
	if err != nil {
		t.Fatalf("scripts/stack ports: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		name, p, _ := strings.Cut(sc.Text(), " ")
		port, _ := strconv.Atoi(p)
		n++
		svc, ok := c.Services[name]
		if !ok {
			t.Errorf("scripts/stack runs %q but docker-compose.yml has no such service", name)
			continue
		}
		if svc.Healthcheck == nil || len(svc.Healthcheck.Test) == 0 {
			t.Errorf("%s: no healthcheck in docker-compose.yml (`docker compose up --wait` needs one)", name)
		}
		via := name
		if rest, ok := strings.CutPrefix(svc.NetworkMode, "service:"); ok {
			via = rest
		}
		if published[port] != via {
			t.Errorf("%s: scripts/stack uses port %d, docker-compose.yml publishes it from %q", name, port, published[port])
		}
	}
	if n != 11 {
		t.Errorf("scripts/stack ports listed %d services, want 11", n)
	}
}

func TestComposeServiceSettings(t *testing.T) {
	c := loadCompose(t)

	pg := c.Services["postgres"]
	if pg.Environment["POSTGRES_USER"] != "masterclass" || pg.Environment["POSTGRES_DB"] != "masterclass" ||
		pg.Environment["POSTGRES_PASSWORD"] != "masterclass" {
		t.Errorf("postgres: user/db/password must all be masterclass to match DATABASE_URL's default, got %v", pg.Environment)
	}
	if cmd, _ := pg.Command.([]any); !slices.Contains(cmd, any("wal_level=logical")) {
		t.Errorf("postgres: command must set wal_level=logical (outbox CDC), got %v", pg.Command)
	}

	k := c.Services["kafka"].Environment
	if k["KAFKA_ADVERTISED_LISTENERS"] != "PLAINTEXT://localhost:9092" {
		t.Errorf("kafka: must advertise localhost:9092 so host clients can connect, got %q", k["KAFKA_ADVERTISED_LISTENERS"])
	}
	if k["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] != "false" {
		t.Errorf("kafka: topic auto-creation must be off (tests create their topics)")
	}
	if !strings.Contains(k["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("kafka: must run in KRaft mode (broker,controller)")
	}

	// Same major versions as the native stack (Debian's Redis 7, Kafka from deploy/kafka/pom.xml).
	pom, err := os.ReadFile(filepath.Join(rootDir(t), "deploy", "kafka", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	_, v, _ := strings.Cut(c.Services["kafka"].Image, ":")
	if !strings.Contains(string(pom), "<kafka.version>"+v+"</kafka.version>") {
		t.Errorf("kafka image %s and deploy/kafka/pom.xml disagree on the version", c.Services["kafka"].Image)
	}
	for _, name := range []string{"redis", "redlock-1", "redlock-2", "redlock-3", "redis-cluster-1"} {
		if img := c.Services[name].Image; !strings.HasPrefix(img, "redis:7") {
			t.Errorf("%s: image %q, want redis:7.x like the native stack", name, img)
		}
	}

	// Cluster nodes must announce 127.0.0.1 so MOVED redirects work from the host.
	node := c.Services["redis-cluster-1"]
	cmd, _ := node.Command.([]any)
	if len(cmd) == 0 || !strings.Contains(cmd[len(cmd)-1].(string), "--cluster-announce-ip 127.0.0.1") {
		t.Errorf("redis-cluster nodes must announce 127.0.0.1, got %v", node.Command)
	}
	if init, ok := c.Services["redis-cluster-init"]; !ok || init.Restart != "no" {
		t.Errorf("redis-cluster-init must exist as a one-shot job (restart: \"no\")")
	}
}

// TestComposeConfigValid loads the file with compose-go, the loader Docker Compose
// itself uses: schema validation, interpolation and consistency checks (network_mode
// and depends_on must name real services) run here without a Docker engine.
func TestComposeConfigValid(t *testing.T) {
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(rootDir(t), "docker-compose.yml")},
		cli.WithConsistency(true), cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml is not a valid Compose file: %v", err)
	}
	if p.Name != "sysdesign-masterclass" {
		t.Errorf("project name %q", p.Name)
	}
	if got := len(p.Services); got != 12 {
		t.Errorf("compose declares %d services, want 12 (11 long-running + redis-cluster-init)", got)
	}
	for _, port := range p.Services["redis-cluster-1"].Ports {
		if port.HostIP != "127.0.0.1" {
			t.Errorf("redis-cluster-1 publishes %v on %q, want 127.0.0.1", port, port.HostIP)
		}
	}
}
