// Package proxyproto reads the PROXY protocol (versions 1 and 2, as
// HAProxy specifies them) in front of a TCP connection, so that a server
// behind a TCP load balancer sees the client's address instead of the
// balancer's, without parsing any HTTP header.
//
// The header is only believed from trusted peers (Listener.Trusted). From a
// trusted peer it is required: a connection without one, or with a malformed
// one, is refused. From anyone else a connection that starts with a PROXY
// signature is refused too, since only a client trying to choose its own
// address would send one; other connections pass through untouched.
//
// Nothing is read in Accept: a slow or silent peer cannot stall the accept
// loop. The header is read on the connection's first Read or RemoteAddr call,
// under Listener.HeaderTimeout.
package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"strconv"
)

// Header is what a PROXY header says about the connection.
type Header struct {
	Version int // 1 or 2
	// Local is true for a v2 LOCAL command or a v1 UNKNOWN line: the proxy's
	// own connection (a health check), or an address family it cannot
	// describe. The socket's own addresses apply.
	Local bool
	// Source is the client, Destination the address it connected to; both
	// are valid unless Local.
	Source, Destination netip.AddrPort
	// TLVs are the raw v2 type-length-value extensions (validated framing;
	// a CRC32C one, if present, has been checked).
	TLVs []byte
}

// Errors a header can fail with. ErrInvalid wraps a description.
var (
	ErrInvalid   = errors.New("proxyproto: invalid PROXY header")
	ErrMissing   = errors.New("proxyproto: trusted peer sent no PROXY header")
	ErrUntrusted = errors.New("proxyproto: PROXY header from an untrusted peer")
)

var (
	v1Prefix = []byte("PROXY ")
	v2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const (
	v1MaxLen     = 107 // the longest v1 line, CRLF included
	v2HeaderLen  = 16
	tlvCRC32C    = 0x03
	v2MaxPayload = 0xFFFF
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Read reads one PROXY header of either version from r and nothing more.
// It returns ErrMissing if r does not start with a PROXY signature (the
// bytes stay unread in r) and an error wrapping ErrInvalid if the header is
// malformed.
func Read(r *bufio.Reader) (Header, error) {
	ok, v2, err := hasSignature(r)
	switch {
	case err != nil:
		return Header{}, err
	case !ok:
		return Header{}, ErrMissing
	case v2:
		return readV2(r)
	}
	return readV1(r)
}

// hasSignature peeks as few bytes as it takes to tell whether r starts with
// a v1 or v2 signature, so that a client that speaks first with a short
// message is never made to wait for bytes it will not send.
func hasSignature(r *bufio.Reader) (ok, v2 bool, err error) {
	for n := 1; ; n++ {
		b, err := r.Peek(n)
		if err != nil {
			if errors.Is(err, io.EOF) && n > 1 {
				err = io.ErrUnexpectedEOF
			}
			return false, false, err
		}
		isV1 := bytes.HasPrefix(v1Prefix, b) || bytes.HasPrefix(b, v1Prefix)
		isV2 := bytes.HasPrefix(v2Sig, b) || bytes.HasPrefix(b, v2Sig)
		switch {
		case !isV1 && !isV2:
			return false, false, nil
		case isV1 && n >= len(v1Prefix):
			return true, false, nil
		case isV2 && n >= len(v2Sig):
			return true, true, nil
		}
		if m := r.Buffered(); m > n {
			n = m - 1 // everything already buffered is free to look at
		}
	}
}

func readV1(r *bufio.Reader) (Header, error) {
	for n := len(v1Prefix); ; n++ {
		b, err := r.Peek(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Header{}, err
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			h, err := parseV1(b[:i+1])
			if err != nil {
				return Header{}, err
			}
			_, _ = r.Discard(i + 1)
			return h, nil
		}
		if n >= v1MaxLen {
			return Header{}, invalid("v1 line longer than %d bytes", v1MaxLen)
		}
		if m := r.Buffered(); m > n {
			n = min(m, v1MaxLen) - 1 // look at what is already buffered first
		}
	}
}

// parseV1 parses "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n".
func parseV1(line []byte) (Header, error) {
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return Header{}, invalid("v1 line does not end in CRLF")
	}
	f := bytes.Split(line[len(v1Prefix):len(line)-2], []byte(" "))
	h := Header{Version: 1}
	switch string(f[0]) {
	case "UNKNOWN":
		h.Local = true // the rest of the line, if any, is to be ignored
		return h, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, invalid("v1 protocol %q, want TCP4, TCP6 or UNKNOWN", f[0])
	}
	if len(f) != 5 {
		return Header{}, invalid("v1 %s line has %d fields, want 5 single-space separated", f[0], len(f))
	}
	want4 := string(f[0]) == "TCP4"
	var ap [2]netip.AddrPort
	for i := range ap {
		a, err := netip.ParseAddr(string(f[1+i]))
		if err != nil || a.Zone() != "" || a.Is4() != want4 {
			return Header{}, invalid("v1 %s address %q", f[0], f[1+i])
		}
		p, err := parsePort(f[3+i])
		if err != nil {
			return Header{}, err
		}
		ap[i] = netip.AddrPortFrom(a.Unmap(), p) // TCP6 may carry ::ffff:a.b.c.d from a dual-stack socket
	}
	h.Source, h.Destination = ap[0], ap[1]
	return h, nil
}

func parsePort(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, invalid("v1 port %q", b)
	}
	p, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, invalid("v1 port %q", b)
	}
	return uint16(p), nil
}

func readV2(r *bufio.Reader) (Header, error) {
	hdr := make([]byte, v2HeaderLen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return Header{}, err
	}
	n := int(binary.BigEndian.Uint16(hdr[14:16]))
	buf := make([]byte, v2HeaderLen+n)
	copy(buf, hdr)
	if _, err := io.ReadFull(r, buf[v2HeaderLen:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, err
	}
	return parseV2(buf)
}

// parseV2 parses a complete v2 header (signature, 4 fixed bytes, payload).
func parseV2(b []byte) (Header, error) {
	ver, cmd := b[12]>>4, b[12]&0x0F
	fam, proto := b[13]>>4, b[13]&0x0F
	payload := b[v2HeaderLen:]
	if ver != 2 {
		return Header{}, invalid("v2 version nibble %d", ver)
	}
	h := Header{Version: 2}
	var addrLen int
	switch fam {
	case 0x0: // AF_UNSPEC
	case 0x1:
		addrLen = 12
	case 0x2:
		addrLen = 36
	case 0x3:
		addrLen = 216
	default:
		return Header{}, invalid("v2 address family %d", fam)
	}
	if proto > 2 {
		return Header{}, invalid("v2 transport protocol %d", proto)
	}
	if len(payload) < addrLen {
		return Header{}, invalid("v2 payload of %d bytes is too short for family %d (%d bytes of addresses)", len(payload), fam, addrLen)
	}
	if err := checkTLVs(b, payload[addrLen:]); err != nil {
		return Header{}, err
	}
	if len(payload) > addrLen {
		h.TLVs = payload[addrLen:]
	}
	switch {
	case cmd == 0x0: // LOCAL: addresses, if any, are ignored
		h.Local = true
	case cmd != 0x1:
		return Header{}, invalid("v2 command %d", cmd)
	case (fam == 0x1 || fam == 0x2) && proto == 0x1: // TCP over IPv4 or IPv6
		a := payload[:addrLen]
		var src, dst netip.Addr
		if fam == 0x1 {
			src, dst = netip.AddrFrom4([4]byte(a[0:4])), netip.AddrFrom4([4]byte(a[4:8]))
		} else {
			src, dst = netip.AddrFrom16([16]byte(a[0:16])), netip.AddrFrom16([16]byte(a[16:32]))
		}
		ports := a[addrLen-4:]
		h.Source = netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(ports[0:2]))
		h.Destination = netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(ports[2:4]))
	default: // UNSPEC, UDP, UNIX sockets: nothing a TCP server can key on
		h.Local = true
	}
	return h, nil
}

// checkTLVs validates the framing of the TLV area and, if it holds a CRC32C
// TLV, the checksum of the whole header (computed with the checksum zeroed).
func checkTLVs(header, tlvs []byte) error {
	for rest := tlvs; len(rest) > 0; {
		if len(rest) < 3 {
			return invalid("v2 TLV area has %d trailing bytes", len(rest))
		}
		n := int(binary.BigEndian.Uint16(rest[1:3]))
		if len(rest) < 3+n {
			return invalid("v2 TLV type %#x says %d bytes, %d left", rest[0], n, len(rest)-3)
		}
		if rest[0] == tlvCRC32C {
			if n != 4 {
				return invalid("v2 CRC32C TLV of %d bytes", n)
			}
			off := len(header) - len(rest) + 3
			want := binary.BigEndian.Uint32(header[off : off+4])
			c := crc32.Update(0, castagnoli, header[:off])
			c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
			if got := crc32.Update(c, castagnoli, header[off+4:]); got != want {
				return invalid("v2 CRC32C %#08x, computed %#08x", want, got)
			}
		}
		rest = rest[3+n:]
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendV1 appends h as a v1 line: what a load balancer in front of a
// server sends (tests and the demo play that part).
func (h Header) AppendV1(b []byte) []byte {
	if h.Local || !h.Source.IsValid() {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	proto := "TCP4"
	if h.Source.Addr().Is6() {
		proto = "TCP6"
	}
	b = append(b, "PROXY "+proto+" "...)
	b = h.Source.Addr().AppendTo(b)
	b = append(b, ' ')
	b = h.Destination.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Source.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Destination.Port()), 10)
	return append(b, "\r\n"...)
}

// AppendV2 appends h as a v2 header with its TLVs.
func (h Header) AppendV2(b []byte) []byte {
	b = append(b, v2Sig...)
	var addrs []byte
	switch {
	case h.Local || !h.Source.IsValid():
		b = append(b, 0x20, 0x00)
	case h.Source.Addr().Is4():
		b = append(b, 0x21, 0x11)
		addrs = append(h.Source.Addr().AsSlice(), h.Destination.Addr().AsSlice()...)
	default:
		b = append(b, 0x21, 0x21)
		src, dst := h.Source.Addr().As16(), h.Destination.Addr().As16()
		addrs = append(src[:], dst[:]...)
	}
	if addrs != nil {
		addrs = binary.BigEndian.AppendUint16(addrs, h.Source.Port())
		addrs = binary.BigEndian.AppendUint16(addrs, h.Destination.Port())
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+len(h.TLVs)))
	b = append(b, addrs...)
	return append(b, h.TLVs...)
}
