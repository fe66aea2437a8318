package lfu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoServer means redis-server is not on PATH.
var ErrNoServer = errors.New("lfu: redis-server not found on PATH (apt-get install redis-server)")

// Server is a throwaway redis-server child process on a free loopback port, with
// persistence off. maxmemory and the eviction policy are server-wide, so the LFU
// demo and tests run here and never reconfigure a Redis someone else is using.
type Server struct {
	Addr string

	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
	out    *lockedBuffer
	once   sync.Once
}

// StartServer starts redis-server and waits until it answers PING.
func StartServer(ctx context.Context) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoServer
	}
	var last error
	for range 5 { // the free port can be taken between choosing and binding it: retry
		s, err := start(ctx, bin)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

func start(ctx context.Context, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "part03-redis-")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		dir:    dir,
		exited: make(chan struct{}),
		out:    &lockedBuffer{},
	}
	s.cmd = exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = childAttr()
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()

	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer func() { _ = rdb.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.exited:
			_ = s.Close()
			return nil, fmt.Errorf("lfu: redis-server exited at start: %s", s.out.String())
		case <-ctx.Done():
			_ = s.Close()
			return nil, ctx.Err()
		default:
		}
		if rdb.Ping(ctx).Err() == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			_ = s.Close()
			return nil, fmt.Errorf("lfu: redis-server on %s did not answer within 10s: %s", s.Addr, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the server (SIGTERM, then SIGKILL after 5 s) and removes its folder.
func (s *Server) Close() error {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		_ = os.RemoveAll(s.dir)
	})
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer keeps the server's output for error messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
