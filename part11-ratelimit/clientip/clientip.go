// Package clientip decides which address a request came from, trusting
// forwarding headers only as far as the operator said to.
//
// A limiter keyed on an address the client can choose is no limiter: a client
// that sends "X-Forwarded-For: 8.8.8.8" gets a fresh quota for every value it
// invents. The rules here:
//
//   - With zero values nothing is trusted: the key is the TCP peer's address
//     (r.RemoteAddr without its port; with the port, every new connection is
//     a new client).
//   - A forwarding header is read only when the TCP peer is a trusted proxy,
//     and only as far back as the chain stays trusted: the client is the
//     rightmost address that is not a trusted proxy (RightmostUntrusted), or
//     the address a known number of proxies in front of us saw (Hops).
//   - A single-address header such as CF-Connecting-IP counts only when the
//     peer is trusted (SingleHeader).
//   - Anything a trusted proxy wrote that does not parse is an error, not a
//     fallback to the proxy's own address, which would put every client
//     behind that proxy into one bucket.
//
// The PROXY protocol (package proxyproto) moves the same trust decision to
// the TCP listener; RemoteAddr then reports the address from the header.
package clientip

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Extractor finds the client's address in a request.
type Extractor interface {
	ClientIP(r *http.Request) (netip.Addr, error)
}

// ErrNoAddress means the request carries no usable client address: a
// malformed RemoteAddr, or a forwarding header from a trusted proxy that is
// missing, empty or not an address. Callers answer 400, not guess.
var ErrNoAddress = errors.New("clientip: no usable client address")

// Trusted is a set of proxy networks. The zero value trusts nothing.
type Trusted []netip.Prefix

// ParseTrusted reads a comma-separated list of CIDR prefixes or bare
// addresses ("10.0.0.0/8, 192.0.2.1"); an empty string is an empty set.
func ParseTrusted(s string) (Trusted, error) {
	var t Trusted
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("clientip: trusted proxy %q: %w", f, err)
			}
			if p.Addr().Zone() != "" {
				return nil, fmt.Errorf("clientip: trusted proxy %q: zones are not allowed", f)
			}
			t = append(t, unmapPrefix(p.Masked()))
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("clientip: trusted proxy %q: %w", f, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("clientip: trusted proxy %q: zones are not allowed", f)
		}
		a = a.Unmap()
		t = append(t, netip.PrefixFrom(a, a.BitLen()))
	}
	return t, nil
}

// unmapPrefix turns ::ffff:10.0.0.0/104 into 10.0.0.0/8, so that a v4-mapped
// prefix matches the unmapped addresses Contains compares it with.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Contains reports whether a is in one of the trusted networks.
func (t Trusted) Contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (t Trusted) String() string {
	if len(t) == 0 {
		return "none"
	}
	s := make([]string, len(t))
	for i, p := range t {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// RemoteAddr is the TCP peer: the right choice when clients connect directly,
// or when a PROXY-protocol listener has already replaced the peer address.
type RemoteAddr struct{}

// ClientIP returns the address in r.RemoteAddr without its port.
func (RemoteAddr) ClientIP(r *http.Request) (netip.Addr, error) { return Peer(r) }

// Peer parses r.RemoteAddr ("203.0.113.7:51234", "[2001:db8::1]:443") into
// its address, dropping the port (which changes with every connection), any
// IPv6 zone, and the ::ffff: prefix of a v4-mapped address.
func Peer(r *http.Request) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: RemoteAddr %q: %v", ErrNoAddress, r.RemoteAddr, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: RemoteAddr %q: %v", ErrNoAddress, r.RemoteAddr, err)
	}
	return a.WithZone("").Unmap(), nil
}

// RightmostUntrusted reads a list header (X-Forwarded-For by default) that
// every trusted proxy appends its peer's address to. Walking from the TCP
// peer leftwards, the first address outside Trusted is the client: everything
// to its left was written by the client itself and is ignored. If the peer is
// not trusted the header is ignored; if every address is trusted, the
// leftmost one is the client (a request from inside the trusted network).
type RightmostUntrusted struct {
	Header  string // "" means X-Forwarded-For
	Trusted Trusted
}

// ClientIP implements Extractor.
func (x RightmostUntrusted) ClientIP(r *http.Request) (netip.Addr, error) {
	peer, err := Peer(r)
	if err != nil || !x.Trusted.Contains(peer) {
		return peer, err
	}
	client := peer
	for e := range rightToLeft(r.Header.Values(headerOr(x.Header))) {
		a, err := parseEntry(e)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%w: %s entry %q from trusted proxy %v: %v", ErrNoAddress, headerOr(x.Header), e, client, err)
		}
		client = a
		if !x.Trusted.Contains(a) {
			break
		}
	}
	return client, nil
}

// Hops reads a list header that exactly Count proxies in front of this
// server each append to: the client is the entry Count places from the right,
// the address the outermost proxy saw. It is for proxies whose addresses are
// not known in advance (a cloud load balancer); the peer must still be in
// Trusted (use 0.0.0.0/0,::/0 only when nothing else can reach the server).
// A request with fewer entries than Count did not pass every proxy, and is
// an error rather than a guess.
type Hops struct {
	Header  string // "" means X-Forwarded-For
	Count   int
	Trusted Trusted
}

// ClientIP implements Extractor.
func (x Hops) ClientIP(r *http.Request) (netip.Addr, error) {
	peer, err := Peer(r)
	if err != nil || x.Count < 1 || !x.Trusted.Contains(peer) {
		return peer, err
	}
	n := 0
	for e := range rightToLeft(r.Header.Values(headerOr(x.Header))) {
		if n++; n < x.Count {
			continue
		}
		a, err := parseEntry(e)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%w: %s entry %q, %d from the right: %v", ErrNoAddress, headerOr(x.Header), e, x.Count, err)
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: %s has %d entries, fewer than the %d trusted hops", ErrNoAddress, headerOr(x.Header), n, x.Count)
}

// SingleHeader reads a header that a trusted edge sets to exactly one
// address (CF-Connecting-IP, True-Client-IP, X-Real-IP), only when the peer
// is in Trusted; from anyone else it is ignored. Two copies of the header are
// an error: a proxy that appends instead of replacing is misconfigured.
type SingleHeader struct {
	Header  string
	Trusted Trusted
}

// ClientIP implements Extractor.
func (x SingleHeader) ClientIP(r *http.Request) (netip.Addr, error) {
	peer, err := Peer(r)
	if err != nil || !x.Trusted.Contains(peer) {
		return peer, err
	}
	v := r.Header.Values(x.Header)
	if len(v) != 1 {
		return netip.Addr{}, fmt.Errorf("%w: want one %s header from trusted proxy %v, got %d", ErrNoAddress, x.Header, peer, len(v))
	}
	a, err := parseEntry(v[0])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %s %q from trusted proxy %v: %v", ErrNoAddress, x.Header, v[0], peer, err)
	}
	return a, nil
}

func headerOr(h string) string {
	if h == "" {
		return "X-Forwarded-For"
	}
	return h
}

// rightToLeft yields the comma-separated entries of a list header from the
// rightmost to the leftmost, across repeated header lines (which HTTP
// defines as one list joined by commas), without allocating.
func rightToLeft(lines []string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for i := len(lines) - 1; i >= 0; i-- {
			s := lines[i]
			for {
				j := strings.LastIndexByte(s, ',')
				if !yield(strings.Trim(s[j+1:], " \t")) {
					return
				}
				if j < 0 {
					break
				}
				s = s[:j]
			}
		}
	}
}

// parseEntry reads one forwarding-header entry: an address, optionally with a
// port ("192.0.2.1:443", "[2001:db8::1]:443", as some load balancers write),
// or a bracketed IPv6 address. Zones are refused: they mean nothing off-host.
func parseEntry(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(s); err2 == nil {
			a, err = ap.Addr(), nil
		} else if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			a, err = netip.ParseAddr(s[1 : len(s)-1])
		}
	}
	if err != nil {
		return netip.Addr{}, errors.New("not an IP address")
	}
	if a.Zone() != "" {
		return netip.Addr{}, errors.New("an IPv6 zone is not a client address")
	}
	return a.Unmap(), nil
}

// Group is the network a limiter should key a client by: the address itself
// for IPv4, its /v6Bits network for IPv6 (64 is the usual choice: one
// subscriber gets a whole /64 and can pick any of its 2^64 addresses, so
// keying on /128 lets one client mint unlimited fresh quotas). v6Bits outside
// 1..128 means 128.
func Group(a netip.Addr, v6Bits int) netip.Prefix {
	bits := a.BitLen()
	if a.Is6() && v6Bits >= 1 && v6Bits < 128 {
		bits = v6Bits
	}
	p, _ := a.Prefix(bits) // bits is within the address's length
	return p
}
