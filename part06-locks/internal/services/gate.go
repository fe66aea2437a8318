package services

import (
	"context"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Gate wraps connections so that they can be frozen together: while the gate
// is frozen, no byte goes out and none that arrives is handed over, which is
// how a process stopped by a GC pause or SIGSTOP, or cut off by a partition,
// looks to the servers it talks to. Deadlines still fire, as the kernel's do
// during a partition. Thaw lets everything through again.
type Gate struct {
	mu     sync.Mutex
	thawed chan struct{} // closed while the gate is open
}

// NewGate returns an open gate.
func NewGate() *Gate {
	c := make(chan struct{})
	close(c)
	return &Gate{thawed: c}
}

// Freeze stops the traffic of every connection through g.
func (g *Gate) Freeze() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.thawed:
		g.thawed = make(chan struct{})
	default: // already frozen
	}
}

// Thaw lets the traffic through again.
func (g *Gate) Thaw() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.thawed:
	default:
		close(g.thawed)
	}
}

func (g *Gate) open() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.thawed
}

// Wrap returns c with its reads and writes held while g is frozen.
func (g *Gate) Wrap(c net.Conn) net.Conn {
	return &gatedConn{Conn: c, g: g, closed: make(chan struct{})}
}

// DialContext dials addr over TCP and wraps the connection.
func (g *Gate) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return g.Wrap(c), nil
}

type gatedConn struct {
	net.Conn
	g                           *Gate
	closeOnce                   sync.Once
	closed                      chan struct{}
	readDeadline, writeDeadline atomic.Pointer[time.Time]
}

// wait blocks while the gate is frozen, until deadline if it is set.
func (c *gatedConn) wait(deadline *time.Time) error {
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	var expired <-chan time.Time
	if deadline != nil && !deadline.IsZero() {
		t := time.NewTimer(time.Until(*deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-c.g.open():
		return nil
	case <-c.closed:
		return net.ErrClosed
	case <-expired:
		return os.ErrDeadlineExceeded
	}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	if err := c.wait(c.readDeadline.Load()); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if err := c.wait(c.readDeadline.Load()); err != nil { // what arrived while frozen waits for the thaw
		return 0, err
	}
	return n, err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if err := c.wait(c.writeDeadline.Load()); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *gatedConn) SetDeadline(t time.Time) error {
	c.readDeadline.Store(&t)
	c.writeDeadline.Store(&t)
	return c.Conn.SetDeadline(t)
}

func (c *gatedConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.Store(&t)
	return c.Conn.SetReadDeadline(t)
}

func (c *gatedConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.Store(&t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *gatedConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
