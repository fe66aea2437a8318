package ratelimit

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP finds the address a request came from, trusting X-Forwarded-For
// only as far as it was written by proxies listed in Trusted.
//
// The article keys its limiter on the raw header, which any client sets:
// a new value per request is a new bucket per request, so nothing is ever
// limited (TestSpoofedForwardedForNeverChangesTheKey). And without the header
// it keys on r.RemoteAddr, which includes the client's port, so each new
// connection of the same client gets a fresh bucket too.
//
// The rule: start at the TCP peer. While the address at hand is a trusted
// proxy, step one entry left in X-Forwarded-For (proxies append the address
// they received the request from). The first untrusted address is the
// client; entries further left were written by it and are ignored. With
// Trusted empty (the default) the header is never read.
//
// Part 11 of the series has the full extractor (a hop count, a single
// trusted header, the PROXY protocol); this one is what a balancer behind
// one tier of known proxies needs.
type ClientIP struct {
	Trusted []netip.Prefix
}

// ErrBadForwardedFor means a trusted proxy passed on an X-Forwarded-For
// entry that is not an IP address. From returns the last trusted hop with
// it, so the request is still keyed, on the proxy, never on the garbage.
var ErrBadForwardedFor = errors.New("ratelimit: unparsable X-Forwarded-For entry")

// From returns the client's address. Its error is non-nil when RemoteAddr
// is not an ip:port (then the address is invalid) or when the header was
// malformed (then the address is the last trusted hop).
func (c ClientIP) From(r *http.Request) (netip.Addr, error) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ratelimit: RemoteAddr %q: %w", r.RemoteAddr, err)
	}
	addr := peer.Addr().Unmap()
	if !c.trusted(addr) {
		return addr, nil
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			e := strings.TrimSpace(entries[j])
			if e == "" {
				continue
			}
			next, err := parseHop(e)
			if err != nil {
				return addr, fmt.Errorf("%w: %q", ErrBadForwardedFor, e)
			}
			addr = next
			if !c.trusted(addr) {
				return addr, nil
			}
		}
	}
	return addr, nil // every hop is a trusted proxy: the leftmost one is the client
}

func (c ClientIP) trusted(a netip.Addr) bool {
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an address, or an address with
// a port as some proxies write it (1.2.3.4:5678, [2001:db8::1]:443).
func parseHop(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap().WithZone(""), nil
}

// Key turns a client address into a limiter key. An IPv6 client is keyed by
// its /64: one host usually owns a whole /64, and keying single addresses
// would give it 2^64 buckets.
func Key(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

// ParseTrusted parses a comma-separated list of CIDRs or single addresses
// ("10.0.0.0/8, 192.168.1.5") for ClientIP.Trusted.
func ParseTrusted(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: trusted proxy %q is neither an address nor a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
