//go:build integration

package l4

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// The article's HAProxy, run: deploy/dsr/haproxy-tcp.cfg keeps the article's
// values (mode tcp, balance leastconn, maxconn 500000, the timeouts); these
// tests run it with HAProxy on loopback (apt-get install haproxy; CI's
// scripts/stack install has it).

// haproxyConfig returns deploy/dsr/haproxy-tcp.cfg bound to a free loopback
// port, with its three servers replaced by servers (no checks: the test
// backends do not speak HTTP) and the syslog line dropped (no syslog here).
func haproxyConfig(t *testing.T, servers ...string) (cfg, addr string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "dsr", "haproxy-tcp.cfg"))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr = ln.Addr().String()
	ln.Close()
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "log" && len(f) > 1 && f[1] == "/dev/log",
			f[0] == "option" && len(f) > 1 && f[1] == "httpchk", f[0] == "http-check", f[0] == "default-server", f[0] == "server":
			continue
		case f[0] == "bind":
			line = "    bind " + addr
		}
		out = append(out, line)
		if len(f) > 0 && f[0] == "balance" {
			for i, s := range servers {
				out = append(out, fmt.Sprintf("    server backend%d %s", i+1, s))
			}
		}
	}
	return strings.Join(out, "\n"), addr
}

// lineBackend serves on a loopback port until the test ends: it writes
// line(conn) and a newline to each connection and closes it.
func lineBackend(t *testing.T, line func(net.Conn) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, line(c))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// requireHAProxy returns the haproxy binary, or skips (fails with
// STACK_REQUIRED=1) when it is not installed.
func requireHAProxy(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		stack.SkipOrFail(t, "haproxy is not installed (apt-get install haproxy)")
	}
	return bin
}

// startHAProxy runs haproxy -db on cfg until the test ends, and waits until
// addr accepts connections.
func startHAProxy(t *testing.T, cfg, addr string) {
	t.Helper()
	bin := requireHAProxy(t)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	var out bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Logf("haproxy:\n%s", out.String())
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "haproxy listens on %s", addr)
}

// Erratum 1: the article's "HAProxy DSR Configuration" is a full proxy. A
// client connects from 127.0.0.2 through HAProxy to a backend that reports
// the address its connection comes from: HAProxy's own (127.0.0.1), on a
// connection HAProxy opened; with DSR the backend would see the client. The
// config is the article's with maxconn 1000: 500000 needs a million file
// descriptors (TestArticleHAProxyMaxconnNeedsAMillionFDs).
func TestArticleHAProxyTCPIsAFullProxy(t *testing.T) {
	backend := lineBackend(t, func(c net.Conn) string { return fmt.Sprintf("my peer is %s", c.RemoteAddr()) })
	cfg, addr := haproxyConfig(t, backend)
	cfg = strings.Replace(cfg, "maxconn 500000", "maxconn 1000", 1)
	startHAProxy(t, cfg, addr)

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	t.Logf("client %s -> %s; backend: %s", c.LocalAddr(), c.RemoteAddr(), strings.TrimSpace(line))
	m := regexp.MustCompile(`my peer is ([\d.]+):(\d+)`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	assert.Equal(t, "127.0.0.1", m[1], "the backend's peer is HAProxy, not the client at 127.0.0.2")
	_, clientPort, _ := net.SplitHostPort(c.LocalAddr().String())
	assert.NotEqual(t, clientPort, m[2], "a second TCP connection, HAProxy's")
}

// The article's maxconn 500000 needs about a million file descriptors (two
// per proxied connection): where the hard limit is lower, as on this
// project's machines (20,000), HAProxy refuses to start.
func TestArticleHAProxyMaxconnNeedsAMillionFDs(t *testing.T) {
	requireHAProxy(t)
	cfg, _ := haproxyConfig(t, "127.0.0.1:9")
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", `ulimit -Hn 20000 && ulimit -Sn 20000 && exec haproxy -db -f "$1"`, "sh", path).CombinedOutput()
	t.Logf("haproxy with a hard limit of 20,000 descriptors:\n%s", out)
	require.Error(t, err, "haproxy exits")
	assert.Regexp(t, `Cannot raise FD limit to 100\d{4}, limit is 20000`, string(out))
}

// The article's table files cookie persistence under "Nginx / Envoy" as
// "Cookie-based (SERVERID)". SERVERID is the cookie of HAProxy's
// documentation: HAProxy in http mode with "cookie SERVERID insert" sets it
// to the server's name and sends a client that returns it to that server.
// (TestStickyCookie: the L7 proxy here does the same with the same name.)
func TestArticleServerIDIsHAProxysCookie(t *testing.T) {
	var backends []string
	for _, name := range []string{"b1", "b2"} {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Backend", name)
		}), ReadHeaderTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		backends = append(backends, ln.Addr().String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind %s
    default_backend app
backend app
    balance roundrobin
    cookie SERVERID insert indirect nocache
    server b1 %s cookie b1
    server b2 %s cookie b2
`, addr, backends[0], backends[1])
	startHAProxy(t, cfg, addr)
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(cookie string) (backend, setCookie string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/", nil)
		require.NoError(t, err)
		if cookie != "" {
			req.Header.Set("Cookie", "SERVERID="+cookie)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.Header.Get("X-Backend"), resp.Header.Get("Set-Cookie")
	}
	first, set := get("")
	assert.Regexp(t, `^SERVERID=b[12]; path=/`, set, "HAProxy names the server in its SERVERID cookie")
	for range 4 {
		b, _ := get(first)
		assert.Equal(t, first, b, "the cookie pins the client to its server")
	}
}

// Erratum 4: deploy/dsr/haproxy-tcp.cfg, the article's values in mode tcp
// with HTTP health checks (option httpchk), is a valid HAProxy config: L4
// balancers are not limited to TCP connect checks.
func TestHAProxyTCPConfigIsValid(t *testing.T) {
	bin := requireHAProxy(t)
	out, err := exec.CommandContext(t.Context(), bin, "-c", "-f", filepath.Join("..", "..", "deploy", "dsr", "haproxy-tcp.cfg")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "Configuration file is valid")
}

// Erratum 3: the article's backend steps write /proc/sys with "echo 1 >"
// after "sudo ip addr add": the redirection is the unprivileged shell's, so
// as a normal user the write fails. Run as nobody (the test drops to it
// when it runs as root).
func TestArticleProcSysWriteNeedsRoot(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/lo/arp_ignore")
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "cannot create /proc/sys/net/ipv4/conf/lo/arp_ignore: Permission denied")
}

// The article's config has "log /dev/log local0" in global and no "log
// global" in defaults, so none of its proxies logs: HAProxy sends a proxy's
// logs only to the targets that proxy names. Two HAProxies with the chapter's
// config, each logging to a syslog socket of the test's: the article's (the
// "log global" line removed) and the chapter's. A connection goes through
// the article's and ends, then one through the chapter's (each HAProxy has
// also had startHAProxy's readiness probe). The chapter's HAProxy logs a
// connection; the article's has sent nothing by then, nor a second later
// (with "log global" kept in both, it logs too: the test then fails).
func TestArticleHAProxyWithoutLogGlobalLogsNothing(t *testing.T) {
	backend := lineBackend(t, func(net.Conn) string { return "hello" })
	start := func(logGlobal bool) (addr string, syslog net.PacketConn) {
		syslog, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { syslog.Close() })
		cfg, addr := haproxyConfig(t, backend)
		cfg = strings.Replace(cfg, "maxconn 500000", "maxconn 1000", 1)
		cfg = strings.Replace(cfg, "global\n", "global\n    log "+syslog.LocalAddr().String()+" local0\n", 1)
		if !logGlobal {
			require.Regexp(t, `(?m)^\s+log global`, cfg)
			cfg = regexp.MustCompile(`(?m)^\s+log global.*\n`).ReplaceAllString(cfg, "")
		}
		startHAProxy(t, cfg, addr)
		return addr, syslog
	}
	articleAddr, articleLog := start(false)
	chapterAddr, chapterLog := start(true)
	through := func(addr string) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
		line, err := bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "hello\n", line)
	}
	through(articleAddr)
	through(chapterAddr)

	buf := make([]byte, 4096)
	require.NoError(t, chapterLog.SetReadDeadline(time.Now().Add(30*time.Second)))
	n, _, err := chapterLog.ReadFrom(buf)
	require.NoError(t, err, "the chapter's HAProxy (log global) logs its connections")
	t.Logf("the chapter's HAProxy logged: %s", bytes.TrimSpace(buf[:n]))
	assert.Contains(t, string(buf[:n]), "tcp_front")

	require.NoError(t, articleLog.SetReadDeadline(time.Now().Add(time.Second)))
	n, _, err = articleLog.ReadFrom(buf)
	var ne net.Error
	if assert.ErrorAs(t, err, &ne, "the article's HAProxy logged %q", buf[:n]) {
		assert.True(t, ne.Timeout())
	}
}
