//go:build integration

package stack

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// ping sends a raw RESP PING to a Redis at addr and returns its first reply line.
func ping(addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestFaultKillRestartAndPause breaks one Redlock master the ways later chapters' fault
// tests will (part06's locks lose a master; a paused holder looks alive but is not) and
// checks each state from a client's side.
func TestFaultKillRestartAndPause(t *testing.T) {
	Require(t, Redlock)
	addr := RedlockAddrs()[1] // redlock-2

	if got, err := ping(addr, time.Second); err != nil || got != "+PONG" {
		t.Fatalf("before: PING %s = %q, %v", addr, got, err)
	}

	Kill(t, "redlock-2")
	if got, err := ping(addr, time.Second); err == nil {
		t.Fatalf("after kill: PING %s answered %q", addr, got)
	}
	Restart(t, "redlock-2")
	if got, err := ping(addr, time.Second); err != nil || got != "+PONG" {
		t.Fatalf("after restart: PING %s = %q, %v", addr, got, err)
	}

	Pause(t, "redlock-2")
	// The kernel still completes the TCP handshake for a stopped process: the client
	// connects, sends, and hears nothing until its own deadline.
	start := time.Now()
	got, err := ping(addr, 500*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("while paused: PING %s = %q, %v; want a read timeout", addr, got, err)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("while paused: PING failed after %v, before its deadline (connection refused?): %v", waited, err)
	}
	Resume(t, "redlock-2")
	if got, err := ping(addr, time.Second); err != nil || got != "+PONG" {
		t.Fatalf("after resume: PING %s = %q, %v", addr, got, err)
	}
}
