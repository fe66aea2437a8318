package proxyproto

import (
	"bufio"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultHeaderTimeout bounds how long a trusted peer may take to send its
// header; load balancers send it with the first segment.
const DefaultHeaderTimeout = 5 * time.Second

// Listener wraps a TCP listener: connections from Trusted peers must start
// with a PROXY header, and from everyone else must not.
type Listener struct {
	net.Listener
	// Trusted reports whether a peer is a proxy allowed to send a header.
	// Nil trusts nobody: every PROXY header is refused.
	Trusted func(netip.Addr) bool
	// HeaderTimeout bounds reading a trusted peer's header; 0 means
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// OnError, if set, hears about every refused connection (for a log line
	// or a counter); the connection's Read returns the same error.
	OnError func(peer net.Addr, err error)
}

// Accept returns the next connection without reading from it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	trusted := false
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil && l.Trusted != nil {
		trusted = l.Trusted(ap.Addr().Unmap())
	}
	timeout := l.HeaderTimeout
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	return &Conn{Conn: c, r: bufio.NewReaderSize(c, 256), trusted: trusted, timeout: timeout, onError: l.OnError}, nil
}

// Conn is a connection whose first bytes may be a PROXY header.
type Conn struct {
	net.Conn
	r       *bufio.Reader
	trusted bool
	timeout time.Duration
	onError func(net.Addr, error)

	once   sync.Once
	hdr    Header
	err    error
	mu     sync.Mutex
	dl     time.Time // the read deadline the application last set
	inInit bool
}

// init reads the header once: from a trusted peer it is required, from an
// untrusted one only the signature is checked (and refused). A trusted
// peer's header is read under the header timeout or the application's own
// read deadline, whichever is sooner; the application's deadline is then
// restored.
func (c *Conn) init() {
	c.once.Do(func() {
		if !c.trusted {
			ok, _, err := hasSignature(c.r)
			if err == nil && ok {
				err = ErrUntrusted
			}
			if err != nil && err != ErrUntrusted {
				err = nil // an ordinary read error: Read reports it itself
			}
			c.fail(err)
			return
		}
		c.mu.Lock()
		dl := time.Now().Add(c.timeout)
		if !c.dl.IsZero() && c.dl.Before(dl) {
			dl = c.dl
		}
		c.inInit = true
		_ = c.Conn.SetReadDeadline(dl)
		c.mu.Unlock()

		h, err := Read(c.r)

		c.mu.Lock()
		c.inInit = false
		_ = c.Conn.SetReadDeadline(c.dl)
		c.mu.Unlock()
		c.hdr = h
		c.fail(err)
	})
}

func (c *Conn) fail(err error) {
	if err == nil {
		return
	}
	c.err = err
	if c.onError != nil {
		c.onError(c.Conn.RemoteAddr(), err)
	}
}

// Read reads past the header; it returns the header's error, if any, on
// every call, and the application should then close the connection.
func (c *Conn) Read(b []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(b)
}

// RemoteAddr is the client's address from a trusted peer's header, or the
// socket's peer otherwise (including when the header was refused).
func (c *Conn) RemoteAddr() net.Addr {
	if !c.trusted {
		return c.Conn.RemoteAddr()
	}
	c.init()
	if c.err != nil || c.hdr.Local {
		return c.Conn.RemoteAddr()
	}
	return net.TCPAddrFromAddrPort(c.hdr.Source)
}

// LocalAddr is the address the client connected to, from a trusted header.
func (c *Conn) LocalAddr() net.Addr {
	if !c.trusted {
		return c.Conn.LocalAddr()
	}
	c.init()
	if c.err != nil || c.hdr.Local {
		return c.Conn.LocalAddr()
	}
	return net.TCPAddrFromAddrPort(c.hdr.Destination)
}

// Header returns the trusted peer's header, or why there is none.
func (c *Conn) Header() (Header, error) {
	c.init()
	return c.hdr, c.err
}

// SetDeadline records the read deadline so that reading the header never
// clears it.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dl = t
	if c.inInit && (t.IsZero() || t.After(time.Now().Add(c.timeout))) {
		return c.SetWriteDeadline(t) // promoted from net.Conn: the header (read) timeout stays in force
	}
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline: see SetDeadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dl = t
	if c.inInit && (t.IsZero() || t.After(time.Now().Add(c.timeout))) {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}
