package h3

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Segment is the size TCPProxy cuts a byte stream into: what one packet of
// a 1280-byte-MTU path carries, about what a QUIC datagram does.
const Segment = 1200

// UDPProxy relays the datagrams of one client (the first that writes to it)
// to a server and back, losing each with probability Loss. A lost datagram
// is dropped, or, with Delay set, delivered Delay late (a retransmission
// that arrives then: the other datagrams pass it).
type UDPProxy struct {
	Loss  float64
	Delay time.Duration

	front, back *net.UDPConn
	client      atomic.Pointer[net.UDPAddr]
	lost        atomic.Int64
	sent        atomic.Int64
	wg          sync.WaitGroup
}

// NewUDPProxy relays to target from a loopback port of its own.
func NewUDPProxy(target string, loss float64, delay time.Duration, seed uint64) (*UDPProxy, error) {
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, err
	}
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	back, err := net.DialUDP("udp", nil, taddr)
	if err != nil {
		_ = front.Close()
		return nil, err
	}
	p := &UDPProxy{Loss: loss, Delay: delay, front: front, back: back}
	p.wg.Add(2)
	go p.relay(rand.New(rand.NewPCG(seed, 1)), func(b []byte) (int, error) {
		n, from, err := front.ReadFromUDP(b)
		if err == nil {
			p.client.CompareAndSwap(nil, from)
		}
		return n, err
	}, back.Write)
	go p.relay(rand.New(rand.NewPCG(seed, 2)), back.Read, func(b []byte) (int, error) {
		if c := p.client.Load(); c != nil {
			return front.WriteToUDP(b, c)
		}
		return len(b), nil
	})
	return p, nil
}

// Addr is where clients send.
func (p *UDPProxy) Addr() string { return p.front.LocalAddr().String() }

// Lost and Sent count datagrams both ways.
func (p *UDPProxy) Lost() int64 { return p.lost.Load() }

// Sent counts the datagrams relayed, lost ones included.
func (p *UDPProxy) Sent() int64 { return p.sent.Load() }

func (p *UDPProxy) relay(rng *rand.Rand, read, write func([]byte) (int, error)) {
	defer p.wg.Done()
	var late sync.WaitGroup
	defer late.Wait()
	buf := make([]byte, 64<<10)
	for {
		n, err := read(buf)
		if err != nil {
			return
		}
		p.sent.Add(1)
		if rng.Float64() >= p.Loss {
			_, _ = write(buf[:n])
			continue
		}
		p.lost.Add(1)
		if p.Delay > 0 {
			b := append([]byte(nil), buf[:n]...)
			late.Add(1)
			time.AfterFunc(p.Delay, func() { defer late.Done(); _, _ = write(b) })
		}
	}
}

// Close stops relaying.
func (p *UDPProxy) Close() error {
	err := errors.Join(p.front.Close(), p.back.Close())
	p.wg.Wait()
	return err
}

// TCPProxy relays TCP connections to a server and models packet loss the
// way TCP turns it into delay: the stream is cut into Segment-byte segments,
// each lost with probability Loss; a lost segment arrives Stall later (its
// retransmission) and, bytes being delivered in order, every segment behind
// it waits until then too. Every stream multiplexed on the connection waits:
// TCP's head-of-line blocking.
type TCPProxy struct {
	Loss  float64
	Stall time.Duration

	ln    net.Listener
	seed  uint64
	conns atomic.Uint64
	lost  atomic.Int64
	sent  atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  map[net.Conn]bool
}

// NewTCPProxy relays to target from a loopback port of its own.
func NewTCPProxy(target string, loss float64, stall time.Duration, seed uint64) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCPProxy{Loss: loss, Stall: stall, ln: ln, seed: seed, open: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept(target)
	return p, nil
}

// Addr is where clients connect.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Lost counts the segments delayed by Stall, both ways.
func (p *TCPProxy) Lost() int64 { return p.lost.Load() }

// Sent counts the segments relayed.
func (p *TCPProxy) Sent() int64 { return p.sent.Load() }

func (p *TCPProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil {
		return false // closed
	}
	if add {
		p.open[c] = true
	} else {
		delete(p.open, c)
	}
	return true
}

func (p *TCPProxy) accept(target string) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, true) || !p.track(s, true) {
			_ = c.Close()
			_ = s.Close()
			return
		}
		n := p.conns.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var both sync.WaitGroup
			both.Go(func() { p.pipe(c, s, rand.New(rand.NewPCG(p.seed, 2*n))) })
			both.Go(func() { p.pipe(s, c, rand.New(rand.NewPCG(p.seed, 2*n+1))) })
			both.Wait()
			p.track(c, false)
			p.track(s, false)
			_ = c.Close()
			_ = s.Close()
		}()
	}
}

type segment struct {
	b       []byte
	release time.Time
}

// pipe copies src to dst in order, each segment no earlier than its release
// time, and half-closes dst when src ends (closes it if src failed).
func (p *TCPProxy) pipe(src, dst net.Conn, rng *rand.Rand) {
	q := make(chan segment, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range q {
			if d := time.Until(s.release); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(s.b); err != nil {
				for range q { // drain: the reader ends when src is closed
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	var last time.Time
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for off := 0; off < n; off += Segment {
			seg := append([]byte(nil), buf[off:min(n, off+Segment)]...)
			release := time.Now()
			p.sent.Add(1)
			if rng.Float64() < p.Loss {
				p.lost.Add(1)
				release = release.Add(p.Stall)
			}
			if release.Before(last) {
				release = last // in order: behind a hole, wait for it
			}
			last = release
			q <- segment{seg, release}
		}
		if err != nil {
			close(q)
			<-done
			if !errors.Is(err, io.EOF) {
				_ = dst.Close()
			}
			return
		}
	}
}

// Close stops accepting, closes every relayed connection and waits for the
// relays to end.
func (p *TCPProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		_ = c.Close()
	}
	p.open = nil
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
