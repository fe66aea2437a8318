// Package slot is Redis Cluster's key -> hash slot function and the parsing of
// its MOVED/ASK redirects.
//
// Redis Cluster does not use a consistent hash ring: it fixes 16384 slots,
// slot = CRC16(key) mod 16384, and assigns slot ranges to masters. Moving data
// means moving whole slots, and a node that receives a key for a slot it does
// not own answers "MOVED <slot> <host:port>" so the client can update its map.
// Hash tags pin related keys to one slot: only the part between the first '{'
// and the first '}' after it is hashed, if that part is not empty.
package slot

import (
	"net"
	"strconv"
	"strings"
)

// Count is the number of hash slots in a Redis Cluster.
const Count = 16384

// crcTable is CRC16-CCITT/XMODEM (polynomial 0x1021, initial value 0, no
// reflection, no final XOR), the variant in the Redis Cluster spec's appendix.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC16 returns the CRC16-XMODEM checksum of s (CRC16("123456789") = 0x31C3).
func CRC16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^s[i]]
	}
	return crc
}

// HashTag returns the part of key that Redis hashes: the bytes between the
// first '{' and the first '}' after it, when there is at least one byte between
// them; otherwise the whole key. So "{user:1001}:profile" hashes "user:1001",
// "a{}{b}" hashes all of "a{}{b}" (the first tag is empty and no later tag is
// tried), "a{b" hashes "a{b", and "{{x}}" hashes "{x".
func HashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	n := strings.IndexByte(key[open+1:], '}')
	if n <= 0 { // no closing brace, or "{}"
		return key
	}
	return key[open+1 : open+1+n]
}

// Of returns key's hash slot, in [0, Count). It matches CLUSTER KEYSLOT,
// including for the empty key (slot 0); go-redis instead sends commands with
// an empty key to a random slot.
func Of(key string) int {
	return int(CRC16(HashTag(key)) & (Count - 1))
}

// Redirect is a cluster redirection: MOVED (the slot lives elsewhere now;
// update the slot map) or ASK (the slot is being migrated; retry this one
// command at Addr after ASKING).
type Redirect struct {
	Ask  bool   // true for ASK, false for MOVED
	Slot int    // the key's slot
	Addr string // host:port of the node to ask, as net.Dial takes it (IPv6 in brackets); host may be empty (then reuse the current host)
}

// String formats r as Redis sends it, without the leading '-': Redis writes
// "%s:%d" with the endpoint as is, so an IPv6 host has no brackets.
func (r Redirect) String() string {
	kind := "MOVED"
	if r.Ask {
		kind = "ASK"
	}
	addr := r.Addr
	if host, port, err := net.SplitHostPort(addr); err == nil {
		addr = host + ":" + port
	}
	return kind + " " + strconv.Itoa(r.Slot) + " " + addr
}

// ParseRedirect parses a cluster error message such as "MOVED 3999
// 127.0.0.1:7002" (go-redis's error text) and reports whether it is one. Redis 7
// may send an empty host (":7002") when the node's endpoint is unknown, and an
// IPv6 node comes without brackets ("MOVED 3999 ::1:7002"): the port is what
// follows the last ':'. Addr is returned as net.JoinHostPort writes it.
func ParseRedirect(msg string) (Redirect, bool) {
	var r Redirect
	rest, found := strings.CutPrefix(msg, "MOVED ")
	if !found {
		if rest, found = strings.CutPrefix(msg, "ASK "); !found {
			return Redirect{}, false
		}
		r.Ask = true
	}
	num, addr, found := strings.Cut(rest, " ")
	if !found || num == "" || len(num) > 5 || strings.TrimLeft(num, "0123456789") != "" {
		return Redirect{}, false
	}
	s, err := strconv.Atoi(num)
	if err != nil || s >= Count || strconv.Itoa(s) != num {
		return Redirect{}, false
	}
	var host, port string
	if strings.HasPrefix(addr, "[") { // already bracketed, as net.JoinHostPort writes it
		if host, port, err = net.SplitHostPort(addr); err != nil {
			return Redirect{}, false
		}
	} else {
		i := strings.LastIndexByte(addr, ':')
		if i < 0 || strings.ContainsAny(addr[:i], "[]") {
			return Redirect{}, false
		}
		host, port = addr[:i], addr[i+1:]
	}
	if strings.ContainsAny(addr, " \t\r\n") || port == "" || strings.TrimLeft(port, "0123456789") != "" || len(port) > 5 {
		return Redirect{}, false
	}
	if p, _ := strconv.Atoi(port); p > 65535 || strconv.Itoa(p) != port {
		return Redirect{}, false
	}
	r.Slot, r.Addr = s, net.JoinHostPort(host, port)
	return r, true
}
